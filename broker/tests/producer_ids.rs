//! InitProducerId with real processes: ids come in blocks from the active controller, so
//! two brokers never hand out the same id, and a restarted broker does not repeat one.

mod common;

use common::{wait_for, Client, Cluster};
use kafka_protocol::messages::*;
use protocol::kafka::ResponseError;
use std::collections::BTreeSet;
use std::time::Duration;

/// InitProducerId v`version` with the given producer id and epoch: (error, id, epoch).
fn init(c: &mut Client, version: i16, id: i64, epoch: i16) -> (i16, i64, i16) {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = None;
    req.transaction_timeout_ms = 60_000;
    req.producer_id = ProducerId(id);
    req.producer_epoch = epoch;
    let r: InitProducerIdResponse = c.call(ApiKey::InitProducerId, version, &req);
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// `n` new producer ids from the broker at `addr`.
fn new_ids(addr: &str, n: usize) -> Vec<i64> {
    let mut c = Client::connect(addr).unwrap();
    (0..n)
        .map(|i| {
            let (error, id, epoch) = init(&mut c, (i % 5) as i16, -1, -1);
            assert_eq!((error, epoch), (0, 0), "InitProducerId to {addr}");
            id
        })
        .collect()
}

fn block(id: i64) -> i64 {
    id / 1000
}

#[test]
fn producer_ids_are_unique_across_brokers_and_restarts() {
    let mut cluster = Cluster::start(2);
    let (b1, b2) = (
        cluster.broker_addrs[0].clone(),
        cluster.broker_addrs[1].clone(),
    );
    let first1 = new_ids(&b1, 6);
    let first2 = new_ids(&b2, 6);
    // Each broker hands out its own block in order; the two blocks differ.
    for ids in [&first1, &first2] {
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
        assert!(ids.iter().all(|&id| block(id) == block(ids[0])), "{ids:?}");
    }
    assert_ne!(block(first1[0]), block(first2[0]));

    // An idempotent producer re-initialising keeps its id with a bumped epoch, until the
    // epoch is exhausted; one of id and epoch without the other is refused.
    let mut c = Client::connect(&b1).unwrap();
    assert_eq!(init(&mut c, 4, first1[0], 0), (0, first1[0], 1));
    assert_eq!(init(&mut c, 3, first1[0], 7), (0, first1[0], 8));
    let (error, fresh, epoch) = init(&mut c, 4, first1[0], i16::MAX - 1);
    assert_eq!((error, epoch), (0, 0));
    assert_eq!(
        fresh,
        first1[5] + 1,
        "an exhausted epoch gets the next id of the block"
    );
    let invalid = ResponseError::InvalidRequest.code();
    assert_eq!(init(&mut c, 4, -1, 3).0, invalid);
    assert_eq!(init(&mut c, 4, first1[0], -1).0, invalid);
    drop(c);

    let mut seen: BTreeSet<i64> = BTreeSet::new();
    for id in first1.iter().chain(&first2).chain([&fresh]) {
        assert!(seen.insert(*id), "id {id} handed out twice");
    }
    let high = *seen.last().unwrap();

    // Broker 1 restarts: the rest of its block is not used again, it gets a new one.
    cluster.stop_broker(1);
    cluster.restart_broker(1);
    let after1: Vec<i64> = wait_for(
        "broker 1 to hand out ids again",
        Duration::from_secs(30),
        || {
            let mut c = Client::connect(&b1).ok()?;
            let (error, id, _) = init(&mut c, 4, -1, -1);
            (error == 0).then(|| {
                let mut ids = vec![id];
                ids.extend(new_ids(&b1, 4));
                ids
            })
        },
    );
    assert!(
        after1.iter().all(|&id| id > high),
        "{after1:?} after restart, before: {seen:?}"
    );
    assert!(
        after1.iter().all(|&id| block(id) == block(after1[0])),
        "{after1:?}"
    );
    // Broker 2 goes on with its block.
    let after2 = new_ids(&b2, 3);
    assert_eq!(after2[0], first2[5] + 1);
    for id in after1.iter().chain(&after2) {
        assert!(seen.insert(*id), "id {id} handed out twice");
    }
}
