//! The Remote Workers API (`google.devtools.remoteworkers.v1test2`, the Bots service a
//! REAPI server hands leases out through), as tonic + prost bindings: generated code,
//! kept out of cargo-xcache's own sources (its worker, `src/worker/`, uses them).
//!
//! No maintained crate has these bindings for tonic 0.14: `bazel-remote-apis` (our REAPI
//! bindings) has none, and `reapi` 0.3 has them for tonic 0.12 only. So the `.proto`
//! files are vendored in `protos/` (this crate's) (Google's, Apache-2.0, `protos/LICENSE`; as the
//! `reapi` crate ships them) and `google.devtools.remoteworkers.v1test2.rs` is the code
//! `tonic-prost-build` 0.14 generates from them, checked in so that building needs no
//! `protoc`. The messages it shares with REAPI (`Any`, `Timestamp`, `Duration`,
//! `google.rpc.Status`) are `bazel-remote-apis`'s own types. To regenerate, compile
//! `protos/bots.proto` (with the googleapis it imports on the include path) with
//! `protox` into a descriptor set and pass it to
//! `tonic_prost_build::configure().build_server(false).build_transport(false)
//! .compile_well_known_types(true)` with `extern_path` for `.google.protobuf.Any`,
//! `.google.protobuf.Timestamp`, `.google.protobuf.Duration`, `.google.rpc` and
//! `.google.api` pointing into `::bazel_remote_apis`, then keep only the
//! `v1test2` file ([`google::protobuf::FieldMask`] below is copied from the
//! well-known types it generates).

#![allow(clippy::all, clippy::pedantic, reason = "generated code")]

pub mod google {
    pub mod devtools {
        pub mod remoteworkers {
            pub mod v1test2 {
                include!("google.devtools.remoteworkers.v1test2.rs");
            }
        }
    }

    pub mod protobuf {
        /// `google.protobuf.FieldMask`, as `tonic-prost-build` generates it (the one
        /// well-known type the Bots service uses that `bazel-remote-apis` lacks).
        #[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
        pub struct FieldMask {
            /// The set of field mask paths.
            #[prost(string, repeated, tag = "1")]
            pub paths: ::prost::alloc::vec::Vec<::prost::alloc::string::String>,
        }
    }
}

pub use google::devtools::remoteworkers::v1test2::*;
