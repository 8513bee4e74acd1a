//! The request pipeline, above the handlers: the route table and the layer every answer
//! passes through, authentication, TLS, connections and their limits, the budget of bodies in
//! flight, and what a request's head must be (percent-escapes, unknown parameters, hyper's
//! own refusals in Elasticsearch's words), and the test API's injected faults.

pub mod auth;
pub mod connections;
pub mod faults;
pub mod in_flight;
pub(crate) mod percent_escapes;
pub(crate) mod refusals;
pub(crate) mod route_table;
pub mod routes;
pub mod tls;
pub(crate) mod unrecognized;
