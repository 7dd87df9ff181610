//! The coordinator's view of `__consumer_offsets`, implemented by the broker over its
//! replicated partition logs.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

/// A boxed, sendable future (what `OffsetsLog` returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One `(key, value)` record of `__consumer_offsets`; a `None` value is a tombstone.
pub type OffsetsRecord = (Bytes, Option<Bytes>);

/// Appends to and reads `__consumer_offsets` partitions led by this broker.
///
/// Ordering: the coordinator calls `append` while holding its state lock, in the order its
/// writes must land. An implementation must fix the position of the records in the log
/// during the call itself (e.g. append to the leader's log synchronously and only wait for
/// the high watermark in the returned future), so successive calls land in call order.
/// `append` must not block and must not call back into the coordinator (its lock is held),
/// and its future must resolve in bounded time (REQUEST_TIMED_OUT, NOT_LEADER_OR_FOLLOWER
/// on leadership loss): OffsetCommit and SyncGroup answers wait for it.
pub trait OffsetsLog: Send + Sync + 'static {
    /// Append records to partition `partition` of `__consumer_offsets` and resolve once
    /// committed (the high watermark passed them: acks=all). Errors are Kafka codes
    /// (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT, ...).
    fn append(
        &self,
        partition: i32,
        records: Vec<OffsetsRecord>,
    ) -> BoxFuture<'static, Result<(), i16>>;

    /// Read every record of partition `partition` from the log start to the log end (for
    /// loading; this broker just became its leader).
    fn read_all(&self, partition: i32) -> BoxFuture<'static, Result<Vec<OffsetsRecord>, i16>>;
}
