//! The README's two `/dev/pktmap` examples (`no_run` on the host, which has no driver), run
//! here as written against the loaded module: the STATE page's magic reads `pktmap`, and a
//! lazy pool mapped with `MapFlags::POPULATE` is "prefaulted: no fault on touch". Keep the
//! example bodies in step with README.md's "Example (Rust)" and "The driver" blocks.

use crate::sys::minor_faults;
use crate::utils::Report;
use pktmap::device::Device;
use pktmap::offset::{pktmap_types, PKTMAP};
use pktmap::pool::PoolOptions;
use pktmap::resource::{map_resource, MapFlags};

/// README "Example (Rust)", returning what it prints.
fn example_state() -> std::io::Result<String> {
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/pktmap")?;
    // The read-only STATE page: type STATE, id 0.
    let state = map_resource(
        &dev,
        &PKTMAP,
        pktmap_types::STATE,
        0,
        4096,
        MapFlags::READONLY,
    )?;
    let mut magic = [0u8; 8];
    state.read_at(0, &mut magic)?;
    Ok(format!("{:?}", std::str::from_utf8(&magic[..6])))
}

/// README "The driver: `/dev/pktmap`" example, with the minor faults its touch took (every
/// page written, as `write_at` writes the first) and the frame read back through `pread`.
fn example_pool() -> std::io::Result<(i64, usize, Vec<u8>, u64)> {
    let dev = Device::open()?;
    let pool = PoolOptions::new(2048, 512).lazy(1).create(&dev)?;
    let bufs = dev.map_pool(pool.id, MapFlags::POPULATE)?; // prefaulted: no fault on touch
    let before = minor_faults();
    bufs.write_at(0, b"frame")?;
    for page in (4096..bufs.len()).step_by(4096) {
        bufs.write_at(page, &[1])?;
    }
    let faults = minor_faults() - before;
    let state = dev.state()?;
    let mut back = vec![0; 5];
    dev.read_resource(pktmap::offset::ResourceType::Pool, pool.id, &mut back)?;
    let len = bufs.len();
    drop(bufs);
    dev.destroy_pool(pool.id)?;
    Ok((faults, len, back, state.pools))
}

pub fn run(r: &mut Report) {
    match example_state() {
        Ok(printed) => r.check(
            "README example (Rust): STATE's magic prints Ok(\"pktmap\")",
            printed == "Ok(\"pktmap\")",
            printed,
        ),
        Err(e) => r.check("README example (Rust) runs", false, e),
    }
    match example_pool() {
        Ok((faults, len, back, pools)) => r.check(
            "README driver example: a lazy 2048 x 512 pool mapped with POPULATE takes no fault on touch",
            faults == 0 && len == 2048 * 512 && back == b"frame" && pools >= 1,
            format!("{faults} faults over {len} bytes, read back {back:?}, STATE pools {pools}"),
        ),
        Err(e) => r.check("README driver example runs", false, e),
    }
}
