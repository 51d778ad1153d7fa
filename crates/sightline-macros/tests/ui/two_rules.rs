use sightline_logging::redact::Redact;

#[derive(Redact)]
struct Contact {
    #[redact(mask = "3-4", hash)]
    phone: String,
    #[redact(omit)]
    #[redact(hash)]
    email: String,
}

fn main() {}
