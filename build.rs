//! The migrations are compiled into the binary (`sqlx::migrate!`): rebuild when one is added or
//! changed, which the macro alone does not notice.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
