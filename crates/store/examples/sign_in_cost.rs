//! How long one sign-in takes (Argon2id at the product's cost, then the database opened),
//! and one guess at a stolen `keys.json` with it: the figure the Argon2id cost was chosen
//! by. Run on the machine in question: `cargo run --release -p binhyen-store --example
//! sign_in_cost`.

use std::time::Instant;

use binhyen_domain::access::Role;
use binhyen_store::keys::{KDF_M_KIB, KDF_T};
use binhyen_store::{Credentials, FirstOfficer, InitOptions, Station};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let password = "trời mưa to quá 2026";
    let opts = InitOptions {
        unit_code: "24280".into(),
        first_officer: FirstOfficer {
            username: "truong".into(),
            full_name: "Nguyễn Hữu Thành".into(),
            password: password.into(),
            role: Role::Chief,
        },
        device_no: 1,
        demo: false,
    };
    drop(Station::init(dir.path(), &opts, chrono::Utc::now())?);
    let mut times = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        drop(Station::open(
            dir.path(),
            &Credentials::new("truong", password),
        )?);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "Argon2id {} MiB, {} passes: one sign-in {:.0} ms (median of {}; fastest {:.0} ms, slowest {:.0} ms)",
        KDF_M_KIB / 1024,
        KDF_T,
        times[times.len() / 2],
        times.len(),
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}
