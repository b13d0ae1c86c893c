//! What every example does with its command line: `-h`/`--help` prints the full usage on
//! stdout and exits 0; a bad argument prints the error and the usage on stderr and exits 2.

/// Runs `parse` (which returns `Ok(None)` for `--help`) and handles help and errors as
/// above; returns what `parse` returned otherwise.
pub(crate) fn parse_or_exit<T>(parse: impl FnOnce() -> anyhow::Result<Option<T>>, usage: &str) -> T {
    match parse() {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{}", usage.trim_end());
            std::process::exit(0);
        }
        Err(err) => {
            eprintln!("{err:#}\n\n{}", usage.trim_end());
            std::process::exit(2);
        }
    }
}

/// The command line of a server whose only option is `--listen ADDR`: the address (or
/// `default`), or `None` for `--help`.
#[allow(dead_code)] // only the examples without other options use it
pub(crate) fn listen_only(default: &str) -> anyhow::Result<Option<String>> {
    match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => Ok(Some(default.to_owned())),
        [flag, addr] if flag == "--listen" => Ok(Some(addr.clone())),
        [flag] if flag == "-h" || flag == "--help" => Ok(None),
        [flag] if flag == "--listen" => anyhow::bail!("--listen needs an address"),
        _ => anyhow::bail!("unexpected arguments"),
    }
}
