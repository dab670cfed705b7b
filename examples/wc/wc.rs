//! Counts lines, words and bytes of stdin like `wc`, reading it in fixed-size chunks so the input never
//! has to fit in memory.

use std::io::{self, Read, Write};

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn main() {
    let mut stdin = io::stdin().lock();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut lines, mut words, mut bytes) = (0u64, 0u64, 0u64);
    let mut in_word = false;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("wc: cannot read stdin: {}", e);
                std::process::exit(1);
            }
        };
        bytes += n as u64;
        for &b in &buf[..n] {
            if b == b'\n' {
                lines += 1;
            }
            if is_space(b) {
                in_word = false;
            } else if !in_word {
                in_word = true;
                words += 1;
            }
        }
    }
    let mut out = io::stdout().lock();
    writeln!(out, "{} {} {}", lines, words, bytes).expect("wc: cannot write stdout");
}
