//! `--help` on every command lists every flag with its default, on stdout, exit 0.

use std::process::Stdio;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flag_of_every_command_shows_its_default() {
    for command in ["serve", "connect"] {
        let output = within(realtime(&[command, "--help"]).stdin(Stdio::null()).output()).await.unwrap();
        assert_eq!(output.status.code(), Some(0), "{command} --help: {output:?}");
        let help = String::from_utf8(output.stdout).unwrap();
        // Each flag's entry runs from the line of its `--name` to the next flag's line.
        let mut flags: Vec<String> = Vec::new();
        for line in help.lines() {
            let line = line.trim_start();
            if line.starts_with("--") || line.starts_with("-h, --help") {
                flags.push(line.to_owned());
            } else if let Some(flag) = flags.last_mut() {
                flag.push_str(line);
            }
        }
        assert!(flags.len() >= 10, "{command} --help lists its flags: {help}");
        for flag in flags.iter().filter(|flag| !flag.starts_with("-h, --help")) {
            assert!(flag.contains("[default: "), "{command} --help: no default for {flag:?}");
        }
    }
}
