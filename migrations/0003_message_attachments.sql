-- Attachments a message references (protocol 13.1 objects as a JSON array), archived with the message; null when none.
ALTER TABLE messages ADD COLUMN attachments TEXT;
