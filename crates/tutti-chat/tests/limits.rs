//! The limits checked at the edge (this crate) and again by the store agree, so a message this
//! crate accepts is never refused by the store for its size.

#[test]
fn the_edge_and_the_store_use_the_same_limits() {
    assert_eq!(
        tutti_chat::MAX_MESSAGE_CHARS,
        tutti_store::MAX_CHAT_TEXT_CHARS
    );
    assert_eq!(
        tutti_chat::MAX_BOOST_CHARS,
        tutti_store::MAX_CHAT_BOOST_CHARS
    );
    assert_eq!(
        tutti_chat::MAX_CLIENT_MESSAGE_ID_LEN,
        tutti_store::MAX_CHAT_CLIENT_ID_LEN
    );
}
