-- Version 6: indexes for the tip list's filters by hamlet and by channel, newest first, so
-- that a filtered page stays quick on a station holding hundreds of thousands of tips.

CREATE INDEX tips_hamlet ON tips(hamlet_id, received_at);
CREATE INDEX tips_channel ON tips(channel, received_at);
