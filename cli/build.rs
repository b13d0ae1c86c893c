//! Marks the tests that need a program this machine lacks, so that the test summary shows
//! them ignored with the reason rather than passed (unless `CI` is set: then they run, and
//! fail without it):
//! - `cfg(node_ws_missing)`: `node` is not on `PATH`, or the `ws` package is not installed
//!   in `bench/node` (`npm --prefix bench/node ci`);
//! - `cfg(redis_server_missing)`: `redis-server` is not on `PATH`.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(node_ws_missing)");
    println!("cargo::rustc-check-cfg=cfg(redis_server_missing)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=CI");
    let on_ci = std::env::var_os("CI").is_some();
    let bench_node = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/node");
    let ws = bench_node.join("node_modules/ws/package.json");
    // Watch the file once it is there, else the directory `npm ci` adds `node_modules` to.
    let watched = if ws.is_file() { ws.clone() } else { bench_node };
    println!("cargo::rerun-if-changed={}", watched.display());
    if (!on_path("node") || !ws.is_file()) && !on_ci {
        println!("cargo::rustc-cfg=node_ws_missing");
    }
    if !on_path("redis-server") && !on_ci {
        println!("cargo::rustc-cfg=redis_server_missing");
    }
}

/// Whether `program` is a file in a directory of `PATH`; watches it (or, when missing, every
/// directory of `PATH`, one of which installing it changes).
fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<_> = std::env::split_paths(&path).filter(|dir| dir.is_dir()).collect();
    match dirs.iter().map(|dir| dir.join(program)).find(|file| file.is_file()) {
        Some(found) => {
            println!("cargo::rerun-if-changed={}", found.display());
            true
        }
        None => {
            for dir in &dirs {
                println!("cargo::rerun-if-changed={}", dir.display());
            }
            false
        }
    }
}
