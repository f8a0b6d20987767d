//! `cargo xcache keygen --out FILE`: a new signing key in FILE, its public key printed
//! as the last line (to paste into `XCACHE_TRUSTED_KEYS`).

use super::args::KeygenArgs;
use crate::errors::CliError;
use crate::sign::Signer;

pub fn run(args: KeygenArgs) -> Result<i32, CliError> {
    let signer = Signer::generate().map_err(CliError::Key)?;
    signer.write_new(&args.out).map_err(CliError::Key)?;
    eprintln!(
        "xcache: wrote a signing key to {} (readable by you only); sign with {}={}",
        args.out.display(),
        crate::config::vars::SIGNING_KEY,
        args.out.display()
    );
    eprintln!(
        "xcache: readers that trust it set {} to the public key:",
        crate::config::vars::TRUSTED_KEYS
    );
    println!("{}", signer.public_key());
    Ok(0)
}
