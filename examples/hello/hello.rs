//! Greets its first argument (or the world) and exits with the code in EXIT_CODE, if set.

use std::env;
use std::process;

fn main() {
    let name = env::args().nth(1).unwrap_or_else(|| String::from("world"));
    println!("Hello, {}!", name);
    match env::var("EXIT_CODE") {
        Ok(value) => match value.trim().parse::<i32>() {
            Ok(code) => process::exit(code),
            Err(_) => {
                eprintln!("hello: EXIT_CODE is not an integer: {:?}", value);
                process::exit(2);
            }
        },
        Err(_) => process::exit(0),
    }
}
