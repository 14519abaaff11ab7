//! AF_XDP mapped through pktmap (in progress, issue 5).
