//! A transport wrapper that keeps everything its party receives, labelled with the protocol
//! step that asked for it: the raw material of the joint-view security tests, which compare
//! what a party saw (and what it knows) for secrets far apart.

use super::{Message, NetError, Transport};
use crate::role::Role;

/// One received message.
#[derive(Clone, Debug)]
pub struct Received {
    /// The protocol step's label (`"wrap: masked values from P0"`), or `""` for a plain `recv`.
    pub step: &'static str,
    /// The party that sent it.
    pub from: Role,
    /// The message as it arrived.
    pub message: Message,
}

/// Wraps a transport and records every message received through it.
pub struct RecordingTransport<T> {
    inner: T,
    view: Vec<Received>,
}

impl<T: Transport> RecordingTransport<T> {
    /// Wraps `inner` with an empty view.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            view: Vec::new(),
        }
    }

    /// The messages received since the last call, in order.
    pub fn take_view(&mut self) -> Vec<Received> {
        std::mem::take(&mut self.view)
    }

    /// Unwraps the transport, dropping any view not yet taken.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: Transport> Transport for RecordingTransport<T> {
    fn role(&self) -> Role {
        self.inner.role()
    }

    fn send(&mut self, to: Role, msg: Message) -> Result<(), NetError> {
        self.inner.send(to, msg)
    }

    fn recv(&mut self, from: Role) -> Result<Message, NetError> {
        self.recv_step(from, "")
    }

    fn flush(&mut self, to: Role) -> Result<(), NetError> {
        self.inner.flush(to)
    }

    fn recv_step(&mut self, from: Role, step: &'static str) -> Result<Message, NetError> {
        let message = self.inner.recv_step(from, step)?;
        self.view.push(Received {
            step,
            from,
            message: message.clone(),
        });
        Ok(message)
    }
}
