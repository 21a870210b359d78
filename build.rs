//! Compiles `proto/` into the gRPC server and client code, with a vendored `protoc` so a fresh
//! machine needs no system package.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("waterbilling_descriptor.bin"))
        .compile_protos(
            &[
                "proto/waterbilling/v1/billing.proto",
                "proto/waterbilling/v1/payments.proto",
                "proto/waterbilling/v1/reconciliation.proto",
            ],
            &["proto"],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
