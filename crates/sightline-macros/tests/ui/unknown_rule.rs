use sightline_logging::redact::Redact;

#[derive(Redact)]
struct Login {
    user: String,
    #[redact(encrypt)]
    password: String,
}

fn main() {}
