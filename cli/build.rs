//! Sets `cfg(node_ws_missing)` when `node` is not on `PATH` or the `ws` package is not
//! installed in `bench/node` (`npm --prefix bench/node ci`), and `CI` is not set: the test
//! that connects Node's `ws` is then marked ignored with the reason, so that the summary
//! shows it skipped rather than passed. Under `CI` it runs, and fails without them.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(node_ws_missing)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=CI");
    let bench_node = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/node");
    let ws = bench_node.join("node_modules/ws/package.json");
    // Watch the file once it is there, else the directory `npm ci` adds `node_modules` to.
    let watched = if ws.is_file() { ws.clone() } else { bench_node };
    println!("cargo::rerun-if-changed={}", watched.display());
    let path = std::env::var_os("PATH").unwrap_or_default();
    let node = std::env::split_paths(&path).map(|dir| dir.join("node")).find(|file| file.is_file());
    if let Some(node) = &node {
        println!("cargo::rerun-if-changed={}", node.display());
    }
    if (node.is_none() || !ws.is_file()) && std::env::var_os("CI").is_none() {
        println!("cargo::rustc-cfg=node_ws_missing");
    }
}
