//! The client side of the sync router (being written).
