//! The controller's Raft storage passes openraft's storage test suite.

use gregor_controller::feed::Feed;
use gregor_controller::raft::log_store::LogStore;
use gregor_controller::raft::state_machine::StateMachine;
use gregor_controller::raft::{StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageIOError;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let log =
            LogStore::open(&dir.path().join("raft")).map_err(|e| StorageIOError::write(&e))?;
        let sm = StateMachine::open(&dir.path().join("raft"), Feed::new("test-cluster"))
            .map_err(|e| StorageIOError::write(&e))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("storage suite");
}
