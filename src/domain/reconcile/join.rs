//! The order-number join, most of a run's work: every payment row of the statement looked up
//! among the ledger's payments by `out_trade_no`.
//!
//! Each number is hashed once, and both sides are split by that hash into parts that share no
//! order number. Each part is joined on its own (on its own thread for a large day) in
//! statement order, so the outcome is the one a single pass in statement order gives: every
//! row of one order number falls in the same part, and the first of them claims the payment.
//! The same split finds the matched payments that may be duplicates (same account and
//! amount), the other pass over every payment.
//!
//! The tables hold a 4-byte payment index and a claim flag, not the keys: a key is compared
//! through the ledger only when the hash's tag agrees, which for a known order is the one
//! comparison that confirms it.

use std::hash::BuildHasher as _;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::{GatewayRow, LedgerPayment, LedgerRef, Matched, Movement, PaymentStatus};

/// Below this many statement rows and ledger payments together the parts run one after
/// another on the calling thread: for a small day, starting threads costs more than it saves.
const THREADED_MIN_ITEMS: usize = 50_000;

/// How the join splits its work: the number of parts, and whether they run on threads.
#[derive(Debug, Clone)]
pub(super) struct Split {
    parts: usize,
    threaded: bool,
    hasher: foldhash::fast::RandomState,
}

impl Split {
    pub(super) fn new(parts: usize, items: usize) -> Split {
        let parts = parts.max(1);
        Split {
            parts,
            threaded: parts > 1 && items >= THREADED_MIN_ITEMS,
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Runs `work` for every part, on threads when the split is threaded; results in part
    /// order. A panic in a part is resumed on the caller.
    fn each<R: Send>(&self, work: impl Fn(usize) -> R + Sync) -> Vec<R> {
        if !self.threaded {
            return (0..self.parts).map(work).collect();
        }
        std::thread::scope(|scope| {
            let work = &work;
            let others: Vec<_> = (1..self.parts)
                .map(|part| scope.spawn(move || work(part)))
                .collect();
            let mut results = Vec::with_capacity(self.parts);
            results.push(work(0));
            for handle in others {
                match handle.join() {
                    Ok(result) => results.push(result),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            results
        })
    }

    /// `hash` of every item, computed in contiguous chunks, one per part.
    fn hashes<T: Sync, H: Send>(&self, items: &[T], hash: impl Fn(&T) -> H + Sync) -> Vec<H> {
        let chunk = items.len().div_ceil(self.parts).max(1);
        let chunks = self.each(|part| {
            let start = (part * chunk).min(items.len());
            let end = (start + chunk).min(items.len());
            items
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .map(&hash)
                .collect::<Vec<_>>()
        });
        chunks.into_iter().flatten().collect()
    }

    fn hash_str(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The part a hash belongs to, from bits the tables do not use (hashbrown takes the bucket
    /// from the low bits and the tag from the top seven), so each part's table stays uniform.
    fn part_of(&self, hash: u64) -> usize {
        let middle = (hash >> 24) & 0xFFFF_FFFF;
        let parts = self.parts as u64;
        usize::try_from((middle * parts) >> 32).unwrap_or(0)
    }
}

/// What the order number of one payment row found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    /// The first row of a known order: it claims the payment.
    First { payment: usize, same_amount: bool },
    /// A later row of an order an earlier row already claimed.
    Repeat { payment: usize },
    /// No payment of the ledger has this order number.
    Unknown,
}

/// A ledger payment in a part's table.
#[derive(Debug, Clone, Copy)]
struct Slot {
    payment: u32,
    claimed: bool,
}

impl Slot {
    /// The key the slot stands for, read through the ledger.
    fn order_no<'p>(&self, payments: &'p [LedgerPayment]) -> Option<&'p str> {
        payments
            .get(self.payment as usize)
            .map(|payment| payment.out_trade_no.as_str())
    }
}

/// One lookup per payment row, in statement order.
pub(super) fn by_order_no(
    split: &Split,
    payments: &[LedgerPayment],
    rows: &[GatewayRow<'_>],
) -> Vec<Lookup> {
    let payment_hashes = split.hashes(payments, |payment| split.hash_str(&payment.out_trade_no));
    let row_hashes = split.hashes(rows, |row| split.hash_str(&row.out_trade_no));
    let parts = split.each(|part| {
        let table = part_table(split, part, payments, &payment_hashes);
        probe_part(split, part, table, payments, rows, &row_hashes)
    });
    merge_in_row_order(parts, rows.len())
}

/// The table of the payments in `part`; for an order number that repeats in the ledger
/// (never expected) the first payment is kept, as the single pass does.
fn part_table(
    split: &Split,
    part: usize,
    payments: &[LedgerPayment],
    hashes: &[u64],
) -> HashTable<Slot> {
    let expected = payments.len() / split.parts + payments.len() / 64 + 16;
    let mut table = HashTable::with_capacity(expected);
    for (at, (payment, &hash)) in payments.iter().zip(hashes).enumerate() {
        if split.part_of(hash) != part {
            continue;
        }
        // A day's ledger is bounded far below 2³² payments (the app stops at 5 M, and 2³²
        // would need half a terabyte of payments in memory).
        let Ok(index) = u32::try_from(at) else { break };
        let number = payment.out_trade_no.as_str();
        let slot_hash = |slot: &Slot| hashes.get(slot.payment as usize).copied().unwrap_or(0);
        let same = |slot: &Slot| slot.order_no(payments) == Some(number);
        if let Entry::Vacant(vacant) = table.entry(hash, same, slot_hash) {
            vacant.insert(Slot {
                payment: index,
                claimed: false,
            });
        }
    }
    table
}

/// Looks up the payment rows of `part` in statement order.
fn probe_part(
    split: &Split,
    part: usize,
    mut table: HashTable<Slot>,
    payments: &[LedgerPayment],
    rows: &[GatewayRow<'_>],
    hashes: &[u64],
) -> Vec<(usize, Lookup)> {
    let mut lookups = Vec::with_capacity(rows.len() / split.parts + rows.len() / 64 + 16);
    for (index, (row, &hash)) in rows.iter().zip(hashes).enumerate() {
        if row.movement != Movement::Payment || split.part_of(hash) != part {
            continue;
        }
        let number = &*row.out_trade_no;
        let found = table.find_mut(hash, |slot| slot.order_no(payments) == Some(number));
        let lookup = match found {
            Some(slot) if slot.claimed => Lookup::Repeat {
                payment: slot.payment as usize,
            },
            Some(slot) => {
                slot.claimed = true;
                let at = slot.payment as usize;
                let amount = payments.get(at).map(|payment| payment.amount_fen);
                Lookup::First {
                    payment: at,
                    same_amount: amount == Some(row.amount_fen),
                }
            }
            None => Lookup::Unknown,
        };
        lookups.push((index, lookup));
    }
    lookups
}

/// The parts' lookups (each in row order, with its row index) merged into one list in row
/// order.
fn merge_in_row_order(parts: Vec<Vec<(usize, Lookup)>>, rows: usize) -> Vec<Lookup> {
    let mut merged = Vec::with_capacity(rows);
    let mut heads: Vec<_> = parts
        .into_iter()
        .map(|part| part.into_iter().peekable())
        .collect();
    loop {
        let next = heads
            .iter_mut()
            .filter_map(|head| head.peek().map(|&(row, _)| row))
            .min();
        let Some(row) = next else { break };
        for head in &mut heads {
            if let Some((_, lookup)) = head.next_if(|&(at, _)| at == row) {
                merged.push(lookup);
            }
        }
    }
    merged
}

/// Positions in `matched`, in order, of the payments that may share their account number and
/// amount with another matched payment (refunded ones excepted), by a 64-bit hash of the
/// pair: a collision only adds a candidate, which the caller then groups exactly.
pub(super) fn possibly_shared(
    split: &Split,
    matched: &[Matched],
    payments: &[LedgerPayment],
) -> Vec<usize> {
    let hashes = split.hashes(matched, |entry| {
        let LedgerRef::Payment(at) = entry.ledger else {
            return None;
        };
        let payment = payments.get(at)?;
        (payment.status != PaymentStatus::Refunded).then(|| {
            split
                .hasher
                .hash_one((payment.account_no.as_str(), payment.amount_fen))
        })
    });
    let parts = split.each(|part| {
        const SHARED: usize = usize::MAX;
        let mut first_by_hash: HashTable<(u64, usize)> =
            HashTable::with_capacity(matched.len() / split.parts + 16);
        let mut shared = Vec::new();
        for (position, hash) in hashes.iter().enumerate() {
            let Some(hash) = *hash else { continue };
            if split.part_of(hash) != part {
                continue;
            }
            match first_by_hash.entry(hash, |&(h, _)| h == hash, |&(h, _)| h) {
                Entry::Vacant(vacant) => {
                    vacant.insert((hash, position));
                }
                Entry::Occupied(mut occupied) => {
                    let first = std::mem::replace(&mut occupied.get_mut().1, SHARED);
                    if first != SHARED {
                        shared.push(first);
                    }
                    shared.push(position);
                }
            }
        }
        shared
    });
    let mut shared = parts.concat();
    shared.sort_unstable();
    shared
}
