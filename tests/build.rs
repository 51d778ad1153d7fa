//! Generates the gRPC code of the suites: the `Echo` test service (`proto/`) and the
//! `Greeter` of example-grpc (`../examples/grpc/proto`), clients and servers. Needs `protoc`
//! on PATH (Debian's `protobuf-compiler`, which `./scripts/test` installs).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_prost_build::configure().compile_protos(
        &[
            "proto/sightline/test/v1/echo.proto",
            "../examples/grpc/proto/sightline/example/v1/greeter.proto",
        ],
        &["proto", "../examples/grpc/proto"],
    )?;
    Ok(())
}
