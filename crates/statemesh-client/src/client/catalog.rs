//! Opening, creating, listing and dropping collections.

use super::{Client, ClientError, Remote, RemoteCell, RemoteMap, unexpected};
use crate::protocol::{ClientReply, ClientRequest, CollectionInfo, OpenMode};
use statemesh_core::Identity;
use statemesh_core::Queryable;

#[cfg(doc)]
use super::Refusal;

impl Client {
    /// A handle on collection `name` of state machine `SM`, created empty
    /// if it does not exist and the token may write it.
    ///
    /// # Errors
    ///
    /// [`Refusal::Mismatch`] if it exists with another type,
    /// [`Refusal::NoSuchCollection`] if it does not exist and the token
    /// may not create it, [`Refusal::UnknownKind`] if the nodes cannot
    /// host `SM`.
    pub async fn open<SM: Queryable + Default>(
        &self,
        name: &str,
    ) -> Result<Remote<SM>, ClientError> {
        self.open_with(name, &SM::default()).await
    }

    /// Like [`Client::open`], for a state machine whose signature depends
    /// on parameters (a bounded queue's capacity): `empty` gives it.
    ///
    /// # Errors
    ///
    /// As [`Client::open`].
    pub async fn open_with<SM: Queryable>(
        &self,
        name: &str,
        empty: &SM,
    ) -> Result<Remote<SM>, ClientError> {
        self.open_as(name, empty, OpenMode::OrCreate).await
    }

    /// A handle on collection `name` of state machine `SM` if it exists:
    /// what a client that only reads should use, so that a misspelt name
    /// is an error instead of a new, empty collection on every node.
    ///
    /// # Errors
    ///
    /// [`Refusal::NoSuchCollection`] if it does not exist; otherwise as
    /// [`Client::open`].
    pub async fn open_existing<SM: Queryable + Default>(
        &self,
        name: &str,
    ) -> Result<Remote<SM>, ClientError> {
        self.open_as(name, &SM::default(), OpenMode::Existing).await
    }

    /// [`Client::open_existing`] for a state machine whose signature
    /// depends on parameters: `empty` gives it.
    ///
    /// # Errors
    ///
    /// As [`Client::open_existing`].
    pub async fn open_existing_with<SM: Queryable>(
        &self,
        name: &str,
        empty: &SM,
    ) -> Result<Remote<SM>, ClientError> {
        self.open_as(name, empty, OpenMode::Existing).await
    }

    /// Creates collection `name` of state machine `SM`, empty: what a
    /// program (or `statemesh create`) uses to make a collection on
    /// purpose.
    ///
    /// # Errors
    ///
    /// [`Refusal::Exists`] if a collection of that name exists (of any
    /// type); [`Refusal::Forbidden`] if the token may not write it;
    /// otherwise as [`Client::open`].
    pub async fn create<SM: Queryable + Default>(
        &self,
        name: &str,
    ) -> Result<Remote<SM>, ClientError> {
        self.create_with(name, &SM::default()).await
    }

    /// [`Client::create`] for a state machine whose signature depends on
    /// parameters: `empty` gives it.
    ///
    /// # Errors
    ///
    /// As [`Client::create`].
    pub async fn create_with<SM: Queryable>(
        &self,
        name: &str,
        empty: &SM,
    ) -> Result<Remote<SM>, ClientError> {
        self.open_as(name, empty, OpenMode::New).await
    }

    async fn open_as<SM: Queryable>(
        &self,
        name: &str,
        empty: &SM,
        mode: OpenMode,
    ) -> Result<Remote<SM>, ClientError> {
        let signature = empty.signature();
        let request = ClientRequest::Open {
            collection: name.to_owned(),
            signature: signature.clone(),
            identity: Identity::of(name, empty),
            mode,
        };
        match self.call(&request).await? {
            ClientReply::Opened { .. } => Ok(Remote::new(self.clone(), name.to_owned(), signature)),
            other => Err(unexpected(&other)),
        }
    }

    /// The collections the token may read, as the node that answers knows
    /// them (its version of each, and the disk each takes there), by name.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn collections(&self) -> Result<Vec<CollectionInfo>, ClientError> {
        match self.call(&ClientRequest::Collections).await? {
            ClientReply::Collections(all) => Ok(all),
            other => Err(unexpected(&other)),
        }
    }

    /// Removes collection `name` from the cluster: every node stops its
    /// group and deletes its files (a node that is down does so when it
    /// comes back), and its mirrors stop with [`Refusal::Dropped`]. A
    /// collection made again under the same name starts empty.
    ///
    /// # Errors
    ///
    /// [`Refusal::NoSuchCollection`] if there is none of that name;
    /// [`Refusal::Forbidden`] without an administrator's token; otherwise
    /// see [`ClientError`].
    pub async fn drop_collection(&self, name: &str) -> Result<(), ClientError> {
        match self
            .call(&ClientRequest::Drop {
                collection: name.to_owned(),
            })
            .await?
        {
            ClientReply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// A handle on the map `name` (see [`Client::open`]).
    ///
    /// # Errors
    ///
    /// As [`Client::open`].
    pub async fn map<K: statemesh_core::collections::Key, V: statemesh_core::collections::Value>(
        &self,
        name: &str,
    ) -> Result<RemoteMap<K, V>, ClientError> {
        self.open(name).await
    }

    /// A handle on the cell `name` (see [`Client::open`]).
    ///
    /// # Errors
    ///
    /// As [`Client::open`].
    pub async fn cell<T: statemesh_core::collections::Value>(
        &self,
        name: &str,
    ) -> Result<RemoteCell<T>, ClientError> {
        self.open(name).await
    }
}
