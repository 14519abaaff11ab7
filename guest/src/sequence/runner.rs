//! The runner: one case per seed (printed, so a failure is reproduced with `pktmap-guest
//! sequence 1 STEPS SEED`), shrunk on failure, one check per case, and the closing report of
//! what the cases exercised.

use super::driver::Driver;
use super::model::{set_mutation, Model, Mutation};
use super::step::{TAGS, TAG_NAMES};
use crate::utils::Report;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub static TALLY: [AtomicUsize; TAGS] = [const { AtomicUsize::new(0) }; TAGS];
/// Lazy pools created per fault-around `1 << k`.
pub static AROUND: [AtomicUsize; 10] = [const { AtomicUsize::new(0) }; 10];
pub static STEPS: AtomicUsize = AtomicUsize::new(0);
/// Steps that did something (not `Skip`), and of those, how many the model said must fail.
pub static DONE: AtomicUsize = AtomicUsize::new(0);
pub static REFUSED: AtomicUsize = AtomicUsize::new(0);
/// Steps whose fault counters (faults served, pages mapped, PMD faults) were predicted and
/// matched.
pub static FAULTS_CHECKED: AtomicUsize = AtomicUsize::new(0);

/// A 32-byte ChaCha seed from a `u64`.
pub fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    for chunk in out.chunks_exact_mut(8) {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

/// Runs one case from `seed`: a sequence of up to `steps` steps, shrunk on failure.
fn run_case(seed: u64, steps: usize) -> Result<(), String> {
    let config = Config {
        cases: 1,
        failure_persistence: None,
        max_shrink_time: 60_000,
        max_shrink_iters: 2_000,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed));
    let mut runner = TestRunner::new_with_rng(config.clone(), rng);
    let strategy = Model::sequential_strategy(1..=steps);
    let result = runner.run(&strategy, |(initial, transitions, seen)| {
        Driver::test_sequential(config.clone(), initial, transitions, seen);
        Ok::<(), TestCaseError>(())
    });
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(why, (_, transitions, _))) => {
            let mut s = format!("{why}\nminimal sequence ({} steps):", transitions.len());
            for t in transitions {
                s.push_str(&format!("\n    {t:?}"));
            }
            Err(s)
        }
        Err(e) => Err(format!("{e}")),
    }
}

/// `pktmap-guest sequence CASES STEPS [SEED] [--secs N]`: runs `CASES` cases (or as many as
/// fit in `N` seconds), each from seed `SEED + k` (random if not given), one check each.
pub fn run(
    r: &mut Report,
    cases: u32,
    steps: usize,
    seed: Option<u64>,
    secs: Option<u64>,
    mutate: Mutation,
) {
    set_mutation(mutate);
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    println!(
        "sequence: seed {seed}, {} of up to {steps} steps (reproduce one case: pktmap-guest sequence 1 {steps} SEED)",
        match secs {
            Some(s) => format!("cases for {s} s"),
            None => format!("{cases} cases"),
        }
    );
    // Failing steps panic; keep proptest's shrinking quiet and print the minimal case instead.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let start = Instant::now();
    let deadline = secs.map(|s| start + Duration::from_secs(s));
    let mut k = 0u64;
    loop {
        let done = match deadline {
            Some(d) => Instant::now() >= d,
            None => k >= u64::from(cases),
        };
        if done {
            break;
        }
        let case_seed = seed.wrapping_add(k);
        let before = STEPS.load(Ordering::Relaxed);
        let result = run_case(case_seed, steps);
        let ran = STEPS.load(Ordering::Relaxed) - before;
        match &result {
            Ok(()) => r.check(
                &format!("sequence case {k} (seed {case_seed}, {ran} steps) matches the model"),
                true,
                "",
            ),
            Err(why) => {
                r.check(
                    &format!("sequence case {k} (seed {case_seed}) matches the model"),
                    false,
                    format!("reproduce: pktmap-guest sequence 1 {steps} {case_seed}\n{why}"),
                );
            }
        }
        k += 1;
    }
    std::panic::set_hook(hook);
    println!(
        "sequence: {k} cases, {} steps ({} acted, {} of them refused by design) in {:.1} s",
        STEPS.load(Ordering::Relaxed),
        DONE.load(Ordering::Relaxed),
        REFUSED.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
    println!(
        "sequence: {} steps had their fault counters predicted and matched",
        FAULTS_CHECKED.load(Ordering::Relaxed)
    );
    let tally: Vec<String> = TAG_NAMES
        .iter()
        .zip(&TALLY)
        .map(|(name, n)| format!("{name} {}", n.load(Ordering::Relaxed)))
        .collect();
    println!("sequence kinds: {}", tally.join(", "));
    let around: Vec<String> = AROUND
        .iter()
        .enumerate()
        .map(|(k, n)| format!("{}: {}", 1 << k, n.load(Ordering::Relaxed)))
        .collect();
    println!(
        "sequence lazy pools per fault-around: {}",
        around.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::{Strategy, ValueTree};

    /// The model alone (no driver) runs many generated sequences without tripping over
    /// itself, and they reach every kind the closing report counts.
    #[test]
    fn generated_sequences_reach_every_kind() {
        let mut seen = [0usize; TAGS];
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(11)),
        );
        let strategy = Model::sequential_strategy(1..=40);
        for _ in 0..600 {
            let (mut model, transitions, _) =
                strategy.new_tree(&mut runner).expect("a case").current();
            for t in &transitions {
                model = <Model as ReferenceStateMachine>::apply(model, t);
                for &tag in &model.tags {
                    seen[tag as usize] += 1;
                }
            }
        }
        let missing: Vec<&str> = TAG_NAMES
            .iter()
            .zip(seen)
            .filter(|(_, n)| *n == 0)
            .map(|(name, _)| *name)
            .collect();
        assert!(missing.is_empty(), "never exercised: {missing:?}");
    }
}
