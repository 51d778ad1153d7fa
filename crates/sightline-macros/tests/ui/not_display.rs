use sightline_logging::redact::Redact;

struct Phone {
    digits: String,
}

#[derive(Redact)]
struct Contact {
    #[redact(mask = "3-4")]
    phone: Phone,
    #[redact(hash)]
    numbers: Vec<u8>,
}

fn main() {}
