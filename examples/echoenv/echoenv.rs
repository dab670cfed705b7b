//! Prints its arguments, one per line, then its environment as sorted NAME=VALUE lines.

use std::env;

fn main() {
    for (i, arg) in env::args().enumerate() {
        println!("arg {}: {}", i, arg);
    }
    let mut vars: Vec<(String, String)> = env::vars().collect();
    vars.sort();
    for (k, v) in vars {
        println!("{}={}", k, v);
    }
}
