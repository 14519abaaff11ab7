//! One module per subcommand, and the argument helpers they share.

pub mod bench;
pub mod maps;
pub mod offset;

use std::io;

/// A usage error: `main` exits 2 for these.
pub fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}
