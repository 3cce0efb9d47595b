"""audit_event: indexes on (call_id, seq), (call_id, action) and (call_id, object_type) instead of call_id

A call's log page counts its events and lists its actions and object types for the filters; with these the
count reads an index only and the lists walk an index one value at a time (workflow.db.distinct_values)
instead of reading every event of the call.

Revision ID: 0005
Revises: 0004
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_audit_event_call_id', table_name='audit_event')
    op.create_index('ix_audit_event_call_seq', 'audit_event', ['call_id', 'seq'], unique=False)
    op.create_index('ix_audit_event_call_action', 'audit_event', ['call_id', 'action'], unique=False)
    op.create_index('ix_audit_event_call_type', 'audit_event', ['call_id', 'object_type'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_event_call_type', table_name='audit_event')
    op.drop_index('ix_audit_event_call_action', table_name='audit_event')
    op.drop_index('ix_audit_event_call_seq', table_name='audit_event')
    op.create_index('ix_audit_event_call_id', 'audit_event', ['call_id'], unique=False)
