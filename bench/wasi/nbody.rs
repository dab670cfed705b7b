//! The n-body simulation of the Computer Language Benchmarks Game (five Jovian planets, symplectic
//! integrator): f64 arithmetic with sqrt. Advances N steps (default 5,000,000) and prints the energy before
//! and after; on stderr, the kernel's own elapsed time.

use std::env;
use std::f64::consts::PI;
use std::time::Instant;

const SOLAR_MASS: f64 = 4.0 * PI * PI;
const DAYS_PER_YEAR: f64 = 365.24;

#[derive(Clone, Copy)]
struct Body {
    x: [f64; 3],
    v: [f64; 3],
    mass: f64,
}

fn bodies() -> [Body; 5] {
    let d = DAYS_PER_YEAR;
    [
        Body { x: [0.0; 3], v: [0.0; 3], mass: SOLAR_MASS },
        Body {
            x: [4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01],
            v: [1.66007664274403694e-03 * d, 7.69901118419740425e-03 * d, -6.90460016972063023e-05 * d],
            mass: 9.54791938424326609e-04 * SOLAR_MASS,
        },
        Body {
            x: [8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01],
            v: [-2.76742510726862411e-03 * d, 4.99852801234917238e-03 * d, 2.30417297573763929e-05 * d],
            mass: 2.85885980666130812e-04 * SOLAR_MASS,
        },
        Body {
            x: [1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01],
            v: [2.96460137564761618e-03 * d, 2.37847173959480950e-03 * d, -2.96589568540237556e-05 * d],
            mass: 4.36624404335156298e-05 * SOLAR_MASS,
        },
        Body {
            x: [1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01],
            v: [2.68067772490389322e-03 * d, 1.62824170038242295e-03 * d, -9.51592254519715870e-05 * d],
            mass: 5.15138902046611451e-05 * SOLAR_MASS,
        },
    ]
}

fn offset_momentum(b: &mut [Body; 5]) {
    let mut p = [0.0; 3];
    for body in b.iter() {
        for k in 0..3 {
            p[k] += body.v[k] * body.mass;
        }
    }
    for k in 0..3 {
        b[0].v[k] = -p[k] / SOLAR_MASS;
    }
}

fn energy(b: &[Body; 5]) -> f64 {
    let mut e = 0.0;
    for i in 0..5 {
        let v = b[i].v;
        e += 0.5 * b[i].mass * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        for j in i + 1..5 {
            let dx = [b[i].x[0] - b[j].x[0], b[i].x[1] - b[j].x[1], b[i].x[2] - b[j].x[2]];
            e -= b[i].mass * b[j].mass / (dx[0] * dx[0] + dx[1] * dx[1] + dx[2] * dx[2]).sqrt();
        }
    }
    e
}

fn advance(b: &mut [Body; 5], dt: f64) {
    for i in 0..5 {
        for j in i + 1..5 {
            let dx = [b[i].x[0] - b[j].x[0], b[i].x[1] - b[j].x[1], b[i].x[2] - b[j].x[2]];
            let d2 = dx[0] * dx[0] + dx[1] * dx[1] + dx[2] * dx[2];
            let mag = dt / (d2 * d2.sqrt());
            let (mi, mj) = (b[i].mass * mag, b[j].mass * mag);
            for k in 0..3 {
                b[i].v[k] -= dx[k] * mj;
                b[j].v[k] += dx[k] * mi;
            }
        }
    }
    for body in b.iter_mut() {
        for k in 0..3 {
            body.x[k] += dt * body.v[k];
        }
    }
}

fn main() {
    let steps: usize = env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5_000_000);
    let mut b = bodies();
    offset_momentum(&mut b);
    let before = energy(&b);
    let start = Instant::now();
    for _ in 0..steps {
        advance(&mut b, 0.01);
    }
    let ns = start.elapsed().as_nanos();
    println!("{:.9}\n{:.9}", before, energy(&b));
    eprintln!("kernel-ns {}", ns);
}
