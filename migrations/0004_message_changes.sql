-- Messages that change (docs/protocol.md 15). A row is an entry of a conversation's stream: a message, or a
-- change entry (edit, delete, reaction) naming its target. extra is the JSON of the entry's other wire fields
-- (replyTo, mentions, edited, deleted, reaction counts, replies, change), kept current by the conversation
-- object (its d1_rewrites queue). reply_to finds a thread's replies; target finds the entries that change a message.
ALTER TABLE messages ADD COLUMN reply_to INTEGER;
ALTER TABLE messages ADD COLUMN target INTEGER;
ALTER TABLE messages ADD COLUMN extra TEXT;
CREATE INDEX messages_replies ON messages (conversation_id, reply_to, seq) WHERE reply_to IS NOT NULL;
CREATE INDEX messages_targets ON messages (conversation_id, target, seq) WHERE target IS NOT NULL;
