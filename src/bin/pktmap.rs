//! The `pktmap` command line (being written: encode, decode, maps, bench).

fn main() {
    eprintln!("pktmap: not yet implemented");
    std::process::exit(2);
}
