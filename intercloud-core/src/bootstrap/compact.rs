//! Constant-size user data: text files shipped as a small POSIX `sh` program that
//! writes them on the node, byte for byte.
//!
//! A cluster's files (`/etc/hosts` block, Hadoop `workers` and rack script, MPI
//! hostfiles, `slurm.conf`) hold one line per node, so shipping them as they are
//! makes every create call's user data O(cluster): a 2,000-node cluster is ~100 KiB,
//! over CloudStack's 32 KiB and EC2's 16 KiB. But the lines of a (group, site) come
//! in runs: `10.77.0.10 worker-1 worker-1.c`, `10.77.0.11 worker-2 worker-2.c`, …
//! differ only by numbers that grow by a constant step. [`sh_lines`] finds those runs
//! in any text and prints each as one `ic_run COUNT FORMAT START:STEP…` call of the
//! shell function [`RUN_FN`]; other lines are printed as they are. The output is
//! O(runs), not O(lines): runs break only where a group, a site or an address octet
//! changes, so a cluster of any size over a few groups and sites is a few KiB.
//!
//! The Rust renderers stay the only definition of every file format: this module
//! never knows what a file means, it only reproduces the rendered text. The tests
//! run the program with the real `sh` and compare its output with the input.
//!
//! A number is a run of 1 to 9 ASCII digits without a leading zero (or `0`); longer
//! runs and zero-padded ones are kept as text.

use std::fmt::Write as _;

use crate::vpn::{BootFile, Bootstrap};

/// The `sh` function that prints a run: `ic_run COUNT FORMAT START:STEP…` prints
/// `COUNT` lines, line `i` being `printf FORMAT` of each `START + i * STEP`.
pub const RUN_FN: &str = "ic_run() { n=$1; f=$2; shift 2; i=0; while [ \"$i\" -lt \"$n\" ]; do \
a=; for p in \"$@\"; do a=\"$a $((${p%:*} + i * ${p#*:}))\"; done; \
printf \"%s$f\\n\" \"\" $a; i=$((i + 1)); done; }\n";

/// `s` as one single-quoted `sh` word.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// One line split into its text pieces and its numbers: `texts.len() == nums.len() + 1`.
#[derive(Debug, PartialEq)]
struct Shape<'a> {
    texts: Vec<&'a str>,
    nums: Vec<i64>,
}

fn shape(line: &str) -> Shape<'_> {
    let b = line.as_bytes();
    let (mut texts, mut nums) = (Vec::new(), Vec::new());
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let digits = &line[i..j];
        if digits.len() <= 9 && (digits == "0" || !digits.starts_with('0')) {
            texts.push(&line[start..i]);
            nums.push(digits.parse().unwrap_or_default());
            start = j;
        }
        i = j;
    }
    texts.push(&line[start..]);
    Shape { texts, nums }
}

/// The `printf` format of a shape: its texts with `%` and `\` escaped, `%d` between.
fn format_of(s: &Shape<'_>) -> String {
    let esc = |t: &str| t.replace('\\', r"\\").replace('%', "%%");
    let mut f = esc(s.texts[0]);
    for t in &s.texts[1..] {
        f.push_str("%d");
        f.push_str(&esc(t));
    }
    f
}

/// The longest run starting at `lines[0]`: its length and its steps.
fn run_at(shapes: &[Shape<'_>]) -> (usize, Vec<i64>) {
    let first = &shapes[0];
    let Some(second) = shapes.get(1).filter(|s| s.texts == first.texts) else {
        return (1, Vec::new());
    };
    let steps: Vec<i64> = first
        .nums
        .iter()
        .zip(&second.nums)
        .map(|(a, b)| b - a)
        .collect();
    let mut len = 2;
    while let Some(s) = shapes.get(len) {
        let k = len as i64;
        let fits = s.texts == first.texts
            && s.nums
                .iter()
                .zip(first.nums.iter().zip(&steps))
                .all(|(n, (a, d))| *n == a + k * d);
        if !fits {
            break;
        }
        len += 1;
    }
    (len, steps)
}

/// `sh` commands that print `text` exactly (see the module docs); they call
/// [`RUN_FN`], which the program must define first.
pub fn sh_lines(text: &str) -> String {
    let (body, tail) = match (text.strip_suffix('\n'), text.rsplit_once('\n')) {
        (Some(b), _) => (Some(b), None),
        (None, Some((b, t))) => (Some(b), Some(t)),
        (None, None) => (None, Some(text).filter(|t| !t.is_empty())),
    };
    let lines: Vec<&str> = body.map(|b| b.split('\n').collect()).unwrap_or_default();
    let shapes: Vec<Shape<'_>> = lines.iter().map(|l| shape(l)).collect();
    let mut out = String::new();
    let mut literal: Vec<&str> = Vec::new();
    let flush = |out: &mut String, literal: &mut Vec<&str>| {
        if !literal.is_empty() {
            out.push_str("printf '%s\\n'");
            for l in literal.drain(..) {
                out.push(' ');
                out.push_str(&sh_quote(l));
            }
            out.push('\n');
        }
    };
    let mut i = 0;
    while i < lines.len() {
        let (len, steps) = run_at(&shapes[i..]);
        // Two lines are shorter as text than as a run.
        if len < 3 {
            literal.push(lines[i]);
            i += 1;
            continue;
        }
        flush(&mut out, &mut literal);
        let s = &shapes[i];
        let _ = write!(out, "ic_run {len} {}", sh_quote(&format_of(s)));
        for (a, d) in s.nums.iter().zip(&steps) {
            let _ = write!(out, " {a}:{d}");
        }
        out.push('\n');
        i += len;
    }
    flush(&mut out, &mut literal);
    if let Some(t) = tail {
        let _ = writeln!(out, "printf '%s' {}", sh_quote(t));
    }
    out
}

/// A `sh` program writing `files` under `$IC_ROOT` (empty on a node: `/`), each with
/// its mode, parent directories created.
pub fn files_script(files: &[BootFile]) -> String {
    let mut out = format!("#!/bin/sh\nset -e\n{RUN_FN}");
    for f in files {
        let path = sh_quote(&f.path);
        let _ = writeln!(
            out,
            "mkdir -p \"$(dirname \"$IC_ROOT\"{path})\"\n{{\n{}}} > \"$IC_ROOT\"{path}\nchmod {} \"$IC_ROOT\"{path}",
            sh_lines(&f.content),
            sh_quote(&f.mode)
        );
    }
    out
}

/// `b` with its files replaced by one [`files_script`] at `script`, run first:
/// the same files on the node, user data O(runs) instead of O(lines).
pub fn compact_files(b: Bootstrap, script: &str) -> Bootstrap {
    if b.files.is_empty() {
        return b;
    }
    let mut commands = vec![format!("sh {}", sh_quote(script))];
    commands.extend(b.commands);
    Bootstrap {
        packages: b.packages,
        files: vec![BootFile {
            path: script.to_owned(),
            mode: "0700".into(),
            content: files_script(&b.files),
        }],
        commands,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> String {
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn runs_and_odd_text_print_back_exactly() {
        let mut text = String::from("# 100% 'quoted' \\n back\\slash $HOME `x`\n");
        for i in 0..300u32 {
            let _ = writeln!(
                text,
                "10.77.{}.{} w-{} w-{}.c-2 007",
                i / 256,
                i % 256,
                i + 1,
                i + 1
            );
        }
        text.push_str("\n\nx\nx\nx\n9999999999 -3 tail-no-newline 12");
        let script = sh_lines(&text);
        // 2 octet runs + the repeated x run, not 300 lines
        assert!(script.lines().count() < 12, "{script}");
        assert_eq!(sh(&format!("{RUN_FN}{script}")), text);
        for t in [
            "",
            "\n",
            "\ny",
            "-x\n-x\n-x\n-1 a\n-2 a\n-3 a\n",
            "a",
            "1\n2\n3\n4\n",
            "5\n3\n1\n-1\n",
        ] {
            assert_eq!(sh(&format!("{RUN_FN}{}", sh_lines(t))), t, "{t:?}");
        }
    }

    #[test]
    fn files_script_writes_files_with_modes() {
        let dir = std::env::temp_dir().join(format!("ic-compact-{}", std::process::id()));
        let files = vec![BootFile {
            path: "/etc/x/a b".into(),
            mode: "0750".into(),
            content: "n-1\nn-2\nn-3\nn-4\n".into(),
        }];
        let b = compact_files(
            Bootstrap {
                files,
                ..Bootstrap::default()
            },
            "/etc/intercloud/files.sh",
        );
        assert_eq!(b.commands, ["sh '/etc/intercloud/files.sh'"]);
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", &b.files[0].content])
            .env("IC_ROOT", &dir)
            .status()
            .unwrap();
        assert!(out.success());
        let p = dir.join("etc/x/a b");
        let got = std::fs::read_to_string(&p).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(got, "n-1\nn-2\nn-3\nn-4\n");
        assert_eq!(mode, 0o750);
    }
}
