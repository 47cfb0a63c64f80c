//! Reader slots: claiming one, giving it back, and taking back the slots of
//! readers that died.
//!
//! A slot's owner word names the process that claimed it (see `liveness`).
//! Reclaiming goes through a `RECLAIMING` marker so that of several processes
//! that find the same dead owner, exactly one clears the slot, and no new
//! reader can claim it half-cleared.

use crate::layout::Control;
use crate::liveness::{self, Liveness};
use crate::protocol::reader_clear;
use std::sync::atomic::Ordering;

const FREE: u64 = 0;
const RECLAIMING: u64 = u64::MAX;

/// Number of slots the writer must scan.
pub(crate) fn used(control: &Control) -> u32 {
    let used = control.slots_used().load(Ordering::SeqCst);
    // A corrupt word can only make the writer scan all slots, never skip one.
    u32::try_from(used)
        .unwrap_or(u32::MAX)
        .min(control.geometry().slots)
}

/// Claims a free slot for the calling process; reclaims dead readers' slots
/// when none is free. Returns `None` when every slot has a live owner.
pub(crate) fn claim(control: &Control) -> Option<u32> {
    if let Some(index) = claim_free(control) {
        return Some(index);
    }
    for index in 0..control.geometry().slots {
        reclaim_if_dead(control, index);
    }
    claim_free(control)
}

fn claim_free(control: &Control) -> Option<u32> {
    let me = liveness::this_process();
    (0..control.geometry().slots).find(|&index| {
        let slot = control.slot(index);
        let won = slot.owner.load(Ordering::SeqCst) == FREE
            && slot
                .owner
                .compare_exchange(FREE, me, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
        if won {
            // Announce before the first pin, so a writer that did not scan
            // this slot provably chose its buffer before our first request
            // (see the protocol in the crate docs).
            control
                .slots_used()
                .fetch_max(u64::from(index) + 1, Ordering::SeqCst);
            reader_clear(slot.pin);
        }
        won
    })
}

/// Gives a slot back (the reader is dropped).
pub(crate) fn release(control: &Control, index: u32) {
    let slot = control.slot(index);
    reader_clear(slot.pin);
    slot.owner.store(FREE, Ordering::SeqCst);
}

/// If the slot's owner is a dead process, clears its pin and frees it.
/// Returns whether it did.
pub(crate) fn reclaim_if_dead(control: &Control, index: u32) -> bool {
    let slot = control.slot(index);
    let owner = slot.owner.load(Ordering::SeqCst);
    if owner == FREE || owner == RECLAIMING {
        return false;
    }
    if liveness::check(owner) == Liveness::Alive {
        return false;
    }
    if slot
        .owner
        .compare_exchange(owner, RECLAIMING, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return false;
    }
    reader_clear(slot.pin);
    slot.owner.store(FREE, Ordering::SeqCst);
    true
}
