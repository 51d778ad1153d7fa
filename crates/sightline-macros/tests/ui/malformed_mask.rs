use sightline_logging::redact::Redact;

#[derive(Redact)]
struct Contact {
    #[redact(mask = "3..4")]
    phone: String,
    #[redact(mask)]
    email: String,
}

fn main() {}
