//! Real-data tests are compiled as ignored (and listed so in the test summary) unless
//! CAPTIONER_DATA names the folder holding the Flickr8k data and golden files.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(captioner_data)");
    println!("cargo::rerun-if-env-changed=CAPTIONER_DATA");
    if std::env::var_os("CAPTIONER_DATA").is_some() {
        println!("cargo::rustc-cfg=captioner_data");
    }
}
