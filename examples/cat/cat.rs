//! Prints the files named by its arguments, in order; with none, copies stdin. Paths resolve through the
//! directories the host pre-opened (usually "/").

use std::fs::File;
use std::io::{self, Read, Write};
use std::process;

fn copy(mut input: impl Read, out: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buf[..n])?;
    }
}

fn main() {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let mut failed = false;
    if paths.is_empty() {
        if let Err(e) = copy(io::stdin().lock(), &mut out) {
            eprintln!("cat: stdin: {}", e);
            failed = true;
        }
    }
    for path in &paths {
        let result = File::open(path).and_then(|f| copy(f, &mut out));
        if let Err(e) = result {
            eprintln!("cat: {}: {}", path, e);
            failed = true;
        }
    }
    out.flush().ok();
    process::exit(if failed { 1 } else { 0 });
}
