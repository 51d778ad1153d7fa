//! Generates the Greeter server and client from `proto/` (needs `protoc` on PATH: Debian's
//! `protobuf-compiler`, which `./scripts/test` installs).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_prost_build::configure()
        .compile_protos(&["proto/sightline/example/v1/greeter.proto"], &["proto"])?;
    Ok(())
}
