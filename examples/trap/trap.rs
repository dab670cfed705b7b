//! Prints a line, then panics; a wasm32-wasi panic aborts, which executes `unreachable`: a trap.

fn main() {
    println!("about to trap");
    let args: Vec<String> = std::env::args().collect();
    // Reading past the arguments keeps the panic from being folded away at compile time.
    let missing = &args[args.len() + 1];
    println!("unreachable: {}", missing);
}
