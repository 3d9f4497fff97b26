//! The protocol core under a hostile simulated network. Seeds are fixed, so a run is
//! reproducible; `FUSION_SIM_SEED=<n>` replays one seed, `FUSION_SIM_SEEDS=<count>` runs more.

use fusion_sync::sim;

#[test]
fn no_event_is_lost_or_applied_twice_and_every_log_converges() {
    let seeds: Vec<u64> = match std::env::var("FUSION_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("FUSION_SIM_SEED is a number")],
        Err(_) => {
            let count = std::env::var("FUSION_SIM_SEEDS")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(64);
            (0..count).collect()
        }
    };
    let mut events = 0;
    for seed in seeds {
        match sim::run(seed, 3, 4_000) {
            Ok(n) => events += n,
            Err(failure) => panic!(
                "{failure}\nreplay: FUSION_SIM_SEED={seed} cargo test -p fusion-sync --test sim"
            ),
        }
    }
    assert!(events > 0);
}
