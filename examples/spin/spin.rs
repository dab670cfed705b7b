//! Prints one line, then loops forever without calling the host: the wall-time limit must stop it.

use std::io::Write;
use std::ptr;

fn main() {
    println!("spinning");
    std::io::stdout().flush().ok();
    let mut counter: u64 = 0;
    loop {
        // A volatile write is a side effect the optimiser must keep, so the loop is not removed.
        unsafe { ptr::write_volatile(&mut counter, counter.wrapping_add(1)) };
    }
}
