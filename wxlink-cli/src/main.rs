//! The `wxlink` command line tool.

fn main() {
    eprintln!("wxlink: the demo is not built yet; see the README for what works today.");
    std::process::exit(1);
}
