// The build script of redis-adapter and of the `realtime` package (both `include!` it):
// see either build.rs.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(redis_server_missing)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=CI");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<_> = std::env::split_paths(&path).filter(|dir| dir.is_dir()).collect();
    match dirs.iter().map(|dir| dir.join("redis-server")).find(|file| file.is_file()) {
        Some(found) => println!("cargo::rerun-if-changed={}", found.display()),
        None => {
            // Installing it changes one of these directories: then the tests run.
            for dir in &dirs {
                println!("cargo::rerun-if-changed={}", dir.display());
            }
            if std::env::var_os("CI").is_none() {
                println!("cargo::rustc-cfg=redis_server_missing");
            }
        }
    }
}
