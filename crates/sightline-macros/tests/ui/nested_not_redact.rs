use sightline_logging::redact::Redact;

struct Address {
    street: String,
}

#[derive(Redact)]
struct Customer {
    #[redact(nested)]
    address: Address,
    #[redact(mask = "1-1")]
    middle_name: Option<Vec<u8>>,
}

fn main() {}
