use sightline_logging::redact::Redact;

#[derive(Redact)]
enum Credential {
    Password(String),
}

#[derive(Redact)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
