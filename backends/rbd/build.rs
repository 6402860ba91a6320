// librbd and librados from the system (Debian: librbd-dev, librados-dev). This crate is built
// only with Glint's `rbd` feature, so the default build needs no Ceph libraries.
fn main() {
    println!("cargo:rustc-link-lib=rbd");
    println!("cargo:rustc-link-lib=rados");
}
