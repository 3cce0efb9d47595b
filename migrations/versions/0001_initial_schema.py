"""initial schema

Revision ID: 0001
Revises: 
"""
from alembic import op
import sqlalchemy as sa
import workflow.db


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_label', sa.String(length=300), nullable=False),
    sa.Column('action', sa.String(length=80), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=True),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_event_seq'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_call_id'), ['call_id'], unique=False)
        batch_op.create_index('ix_audit_event_object', ['object_type', 'object_id'], unique=False)

    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.create_table('call',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('phase', sa.String(length=32), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('definition_sha256', sa.String(length=64), nullable=False),
    sa.Column('rebuttal_opens_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('rebuttal_closes_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('created_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', workflow.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call')),
    sa.UniqueConstraint('code', name=op.f('uq_call_code'))
    )
    op.create_table('funding_organisation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('acronym', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('region', sa.String(length=120), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_funding_organisation')),
    sa.UniqueConstraint('acronym', name=op.f('uq_funding_organisation_acronym'))
    )
    op.create_table('login_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('succeeded', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempt'))
    )
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempt_email_at', ['email', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_attempt_ip'), ['ip'], unique=False)

    op.create_table('outbox_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=60), nullable=False),
    sa.Column('dedup_key', sa.String(length=200), nullable=True),
    sa.Column('to_address', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('attachments', sa.JSON(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('next_attempt_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('claimed_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('sent_at', workflow.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'sending', 'sent', 'failed')", name=op.f('ck_outbox_message_known_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_message')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_outbox_message_dedup_key'))
    )
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_message_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_message_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_message_status'), ['status'], unique=False)

    op.create_table('user_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('email_confirmed_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False),
    sa.Column('organisation', sa.String(length=300), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('created_at', workflow.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_account')),
    sa.UniqueConstraint('email', name=op.f('uq_user_account_email'))
    )
    op.create_table('account_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('used_at', workflow.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_account_token_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_token')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_account_token_token_sha256'))
    )
    with op.batch_alter_table('account_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_token_user_id'), ['user_id'], unique=False)

    op.create_table('budget_increase',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('funder_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', workflow.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_budget_increase_increase_positive')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_budget_increase_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['funder_id'], ['funding_organisation.id'], name=op.f('fk_budget_increase_funder_id_funding_organisation')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user_account.id'], name=op.f('fk_budget_increase_recorded_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_increase'))
    )
    with op.batch_alter_table('budget_increase', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_budget_increase_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_budget_increase_funder_id'), ['funder_id'], unique=False)

    op.create_table('call_funder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('funder_id', sa.Integer(), nullable=False),
    sa.Column('committed_budget', sa.BigInteger(), nullable=False),
    sa.Column('max_per_partner', sa.BigInteger(), nullable=True),
    sa.Column('max_per_project', sa.BigInteger(), nullable=True),
    sa.Column('eligible_partner_types', sa.JSON(), nullable=False),
    sa.Column('national_contact', sa.String(length=300), nullable=True),
    sa.Column('national_application_required', sa.Boolean(), nullable=False),
    sa.CheckConstraint('committed_budget >= 0', name=op.f('ck_call_funder_budget_not_negative')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_call_funder_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['funder_id'], ['funding_organisation.id'], name=op.f('fk_call_funder_funder_id_funding_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_funder')),
    sa.UniqueConstraint('call_id', 'funder_id', name=op.f('uq_call_funder_call_id_funder_id'))
    )
    op.create_table('call_stage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('opens_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('deadline', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('closed_at', workflow.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_call_stage_call_id_call'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_stage')),
    sa.UniqueConstraint('call_id', 'kind', name=op.f('uq_call_stage_call_id_kind'))
    )
    op.create_table('funding_scenario',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('cause', sa.String(length=12), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('result_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('approved_by_id', sa.Integer(), nullable=False),
    sa.Column('approved_at', workflow.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("cause IN ('approval', 'decline', 'recompute')", name=op.f('ck_funding_scenario_known_cause')),
    sa.CheckConstraint("status IN ('current', 'superseded')", name=op.f('ck_funding_scenario_known_status')),
    sa.ForeignKeyConstraint(['approved_by_id'], ['user_account.id'], name=op.f('fk_funding_scenario_approved_by_id_user_account')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_funding_scenario_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_funding_scenario_created_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_funding_scenario')),
    sa.UniqueConstraint('call_id', 'revision', name=op.f('uq_funding_scenario_call_id_revision'))
    )
    with op.batch_alter_table('funding_scenario', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_funding_scenario_call_id'), ['call_id'], unique=False)

    op.create_table('letter_export_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('via', sa.String(length=4), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('file_key', sa.String(length=500), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('started_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('heartbeat_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('finished_at', workflow.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("stage IN ('pre', 'full')", name=op.f('ck_letter_export_job_known_stage')),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_letter_export_job_known_status')),
    sa.CheckConstraint("via IN ('web', 'cli')", name=op.f('ck_letter_export_job_known_via')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_letter_export_job_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_letter_export_job_created_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letter_export_job'))
    )
    with op.batch_alter_table('letter_export_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_letter_export_job_call_id'), ['call_id'], unique=False)

    op.create_table('letter_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('source_sha256', sa.String(length=64), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_letter_template_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user_account.id'], name=op.f('fk_letter_template_updated_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letter_template')),
    sa.UniqueConstraint('call_id', name=op.f('uq_letter_template_call_id'))
    )
    op.create_table('mail_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=60), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('updated_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_mail_template_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user_account.id'], name=op.f('fk_mail_template_updated_by_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_template')),
    sa.UniqueConstraint('call_id', 'kind', name=op.f('uq_mail_template_call_id_kind'))
    )
    with op.batch_alter_table('mail_template', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_template_call_id'), ['call_id'], unique=False)

    op.create_table('proposal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=40), nullable=False),
    sa.Column('acronym', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('abstract', sa.Text(), nullable=False),
    sa.Column('keywords', sa.String(length=500), nullable=False),
    sa.Column('topic', sa.String(length=200), nullable=False),
    sa.Column('duration_months', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('coordinator_id', sa.Integer(), nullable=False),
    sa.Column('created_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_proposal_call_id_call')),
    sa.ForeignKeyConstraint(['coordinator_id'], ['user_account.id'], name=op.f('fk_proposal_coordinator_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proposal')),
    sa.UniqueConstraint('call_id', 'reference', name=op.f('uq_proposal_call_id_reference'))
    )
    with op.batch_alter_table('proposal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proposal_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposal_coordinator_id'), ['coordinator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_proposal_state'), ['state'], unique=False)

    op.create_table('ranking_list',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', workflow.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('draft', 'approved')", name=op.f('ck_ranking_list_known_status')),
    sa.ForeignKeyConstraint(['approved_by_id'], ['user_account.id'], name=op.f('fk_ranking_list_approved_by_id_user_account')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_ranking_list_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_ranking_list_created_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ranking_list')),
    sa.UniqueConstraint('call_id', 'stage', name=op.f('uq_ranking_list_call_id_stage'))
    )
    with op.batch_alter_table('ranking_list', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ranking_list_call_id'), ['call_id'], unique=False)

    op.create_table('reviewer_invitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=True),
    sa.Column('invited_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('responded_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('decline_reason', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('invited', 'accepted', 'declined')", name=op.f('ck_reviewer_invitation_known_status')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_reviewer_invitation_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invited_by_id'], ['user_account.id'], name=op.f('fk_reviewer_invitation_invited_by_id_user_account')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_reviewer_invitation_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviewer_invitation')),
    sa.UniqueConstraint('call_id', 'user_id', name=op.f('uq_reviewer_invitation_call_id_user_id')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_reviewer_invitation_token_sha256'))
    )
    with op.batch_alter_table('reviewer_invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reviewer_invitation_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reviewer_invitation_user_id'), ['user_id'], unique=False)

    op.create_table('reviewer_profile',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('keywords', sa.JSON(), nullable=False),
    sa.Column('organisation', sa.String(length=300), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('email_domain', sa.String(length=254), nullable=True),
    sa.Column('declaration_accepted_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('updated_at', workflow.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_reviewer_profile_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_reviewer_profile_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviewer_profile')),
    sa.UniqueConstraint('call_id', 'user_id', name=op.f('uq_reviewer_profile_call_id_user_id'))
    )
    with op.batch_alter_table('reviewer_profile', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reviewer_profile_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reviewer_profile_user_id'), ['user_id'], unique=False)

    op.create_table('role_grant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('funder_id', sa.Integer(), nullable=True),
    sa.Column('granted_at', workflow.db.UTCDateTime(), nullable=False),
    sa.CheckConstraint("(role = 'officer') = (funder_id IS NOT NULL)", name=op.f('ck_role_grant_officer_has_funder')),
    sa.CheckConstraint("role IN ('secretariat', 'officer', 'reviewer')", name=op.f('ck_role_grant_known_role')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_role_grant_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['funder_id'], ['funding_organisation.id'], name=op.f('fk_role_grant_funder_id_funding_organisation')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_role_grant_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_grant')),
    sa.UniqueConstraint('user_id', 'role', 'call_id', 'funder_id', name=op.f('uq_role_grant_user_id_role_call_id_funder_id'))
    )
    op.create_table('role_invitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('funder_id', sa.Integer(), nullable=True),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('accepted_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('accepted_by_id', sa.Integer(), nullable=True),
    sa.Column('revoked_at', workflow.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("(role = 'officer') = (funder_id IS NOT NULL)", name=op.f('ck_role_invitation_officer_has_funder')),
    sa.CheckConstraint("role IN ('secretariat', 'officer', 'reviewer')", name=op.f('ck_role_invitation_known_role')),
    sa.ForeignKeyConstraint(['accepted_by_id'], ['user_account.id'], name=op.f('fk_role_invitation_accepted_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_role_invitation_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['funder_id'], ['funding_organisation.id'], name=op.f('fk_role_invitation_funder_id_funding_organisation')),
    sa.ForeignKeyConstraint(['invited_by_id'], ['user_account.id'], name=op.f('fk_role_invitation_invited_by_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_invitation')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_role_invitation_token_sha256'))
    )
    with op.batch_alter_table('role_invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_invitation_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_role_invitation_email'), ['email'], unique=False)

    op.create_table('change_approval',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('approved_by_id', sa.Integer(), nullable=False),
    sa.Column('approved_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('justification', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['approved_by_id'], ['user_account.id'], name=op.f('fk_change_approval_approved_by_id_user_account')),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_change_approval_proposal_id_proposal'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_change_approval'))
    )
    with op.batch_alter_table('change_approval', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_change_approval_proposal_id'), ['proposal_id'], unique=False)

    op.create_table('conflict',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('rule', sa.String(length=30), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('overridden_by_id', sa.Integer(), nullable=True),
    sa.Column('override_justification', sa.Text(), nullable=True),
    sa.Column('overridden_at', workflow.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("source IN ('declared', 'detected')", name=op.f('ck_conflict_known_source')),
    sa.CheckConstraint('overridden_at IS NULL OR override_justification IS NOT NULL', name=op.f('ck_conflict_override_has_justification')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_conflict_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_conflict_created_by_id_user_account')),
    sa.ForeignKeyConstraint(['overridden_by_id'], ['user_account.id'], name=op.f('fk_conflict_overridden_by_id_user_account')),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_conflict_proposal_id_proposal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['user_account.id'], name=op.f('fk_conflict_reviewer_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conflict')),
    sa.UniqueConstraint('reviewer_id', 'proposal_id', 'rule', name=op.f('uq_conflict_reviewer_id_proposal_id_rule'))
    )
    with op.batch_alter_table('conflict', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conflict_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conflict_proposal_id'), ['proposal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conflict_reviewer_id'), ['reviewer_id'], unique=False)

    op.create_table('decision_letter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('coordinator_id', sa.Integer(), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('pdf', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('template_sha256', sa.String(length=64), nullable=False),
    sa.Column('generated_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('generated_by_id', sa.Integer(), nullable=True),
    sa.Column('sent_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('sent_by_id', sa.Integer(), nullable=True),
    sa.Column('outbox_message_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("outcome IN ('not_eligible', 'not_invited', 'invited', 'funded', 'reserve', 'not_funded')", name=op.f('ck_decision_letter_known_outcome')),
    sa.CheckConstraint("stage IN ('pre', 'full')", name=op.f('ck_decision_letter_known_stage')),
    sa.CheckConstraint('sent_at IS NULL OR sent_by_id IS NOT NULL', name=op.f('ck_decision_letter_sent_has_sender')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_decision_letter_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['coordinator_id'], ['user_account.id'], name=op.f('fk_decision_letter_coordinator_id_user_account')),
    sa.ForeignKeyConstraint(['generated_by_id'], ['user_account.id'], name=op.f('fk_decision_letter_generated_by_id_user_account')),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_decision_letter_proposal_id_proposal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sent_by_id'], ['user_account.id'], name=op.f('fk_decision_letter_sent_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decision_letter')),
    sa.UniqueConstraint('proposal_id', 'stage', name=op.f('uq_decision_letter_proposal_id_stage'))
    )
    with op.batch_alter_table('decision_letter', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decision_letter_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_decision_letter_proposal_id'), ['proposal_id'], unique=False)

    op.create_table('funding_confirmation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('funder_id', sa.Integer(), nullable=False),
    sa.Column('scenario_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('created_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("status != 'declined' OR reason IS NOT NULL", name=op.f('ck_funding_confirmation_declined_has_reason')),
    sa.CheckConstraint("status IN ('pending', 'confirmed', 'declined', 'cancelled')", name=op.f('ck_funding_confirmation_known_status')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_funding_confirmation_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user_account.id'], name=op.f('fk_funding_confirmation_decided_by_id_user_account')),
    sa.ForeignKeyConstraint(['funder_id'], ['funding_organisation.id'], name=op.f('fk_funding_confirmation_funder_id_funding_organisation')),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_funding_confirmation_proposal_id_proposal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scenario_id'], ['funding_scenario.id'], name=op.f('fk_funding_confirmation_scenario_id_funding_scenario')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_funding_confirmation')),
    sa.UniqueConstraint('proposal_id', 'funder_id', name=op.f('uq_funding_confirmation_proposal_id_funder_id'))
    )
    with op.batch_alter_table('funding_confirmation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_funding_confirmation_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_funding_confirmation_funder_id'), ['funder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_funding_confirmation_proposal_id'), ['proposal_id'], unique=False)

    op.create_table('panel_consensus',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('scores', sa.JSON(), nullable=False),
    sa.Column('weighted_total', sa.Float(), nullable=False),
    sa.Column('recommendation', sa.String(length=24), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('entered_by_id', sa.Integer(), nullable=False),
    sa.Column('entered_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("recommendation IN ('recommended', 'recommended_if_funds', 'not_recommended')", name=op.f('ck_panel_consensus_known_recommendation')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_panel_consensus_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['entered_by_id'], ['user_account.id'], name=op.f('fk_panel_consensus_entered_by_id_user_account')),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_panel_consensus_proposal_id_proposal'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_panel_consensus')),
    sa.UniqueConstraint('proposal_id', 'stage', name=op.f('uq_panel_consensus_proposal_id_stage'))
    )
    with op.batch_alter_table('panel_consensus', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_panel_consensus_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_panel_consensus_proposal_id'), ['proposal_id'], unique=False)

    op.create_table('partner',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('organisation', sa.String(length=300), nullable=False),
    sa.Column('partner_type', sa.String(length=32), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('region', sa.String(length=120), nullable=True),
    sa.Column('funder_id', sa.Integer(), nullable=True),
    sa.Column('own_funded', sa.Boolean(), nullable=False),
    sa.Column('pi_name', sa.String(length=200), nullable=False),
    sa.Column('pi_email', sa.String(length=254), nullable=False),
    sa.Column('requested_amount', sa.BigInteger(), nullable=False),
    sa.Column('budget', sa.JSON(), nullable=False),
    sa.CheckConstraint('NOT (own_funded AND funder_id IS NOT NULL)', name=op.f('ck_partner_own_funded_has_no_funder')),
    sa.CheckConstraint('requested_amount >= 0', name=op.f('ck_partner_request_not_negative')),
    sa.ForeignKeyConstraint(['funder_id'], ['funding_organisation.id'], name=op.f('fk_partner_funder_id_funding_organisation')),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_partner_proposal_id_proposal'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner'))
    )
    with op.batch_alter_table('partner', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partner_funder_id'), ['funder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_partner_pi_email'), ['pi_email'], unique=False)
        batch_op.create_index(batch_op.f('ix_partner_proposal_id'), ['proposal_id'], unique=False)

    op.create_table('proposal_invitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('can_edit', sa.Boolean(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('invited_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('accepted_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('accepted_by_id', sa.Integer(), nullable=True),
    sa.Column('revoked_at', workflow.db.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['accepted_by_id'], ['user_account.id'], name=op.f('fk_proposal_invitation_accepted_by_id_user_account')),
    sa.ForeignKeyConstraint(['invited_by_id'], ['user_account.id'], name=op.f('fk_proposal_invitation_invited_by_id_user_account')),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_proposal_invitation_proposal_id_proposal'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proposal_invitation')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_proposal_invitation_token_sha256'))
    )
    with op.batch_alter_table('proposal_invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proposal_invitation_proposal_id'), ['proposal_id'], unique=False)

    op.create_table('proposal_member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('can_edit', sa.Boolean(), nullable=False),
    sa.Column('added_at', workflow.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_proposal_member_proposal_id_proposal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_proposal_member_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proposal_member')),
    sa.UniqueConstraint('proposal_id', 'user_id', name=op.f('uq_proposal_member_proposal_id_user_id'))
    )
    with op.batch_alter_table('proposal_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proposal_member_user_id'), ['user_id'], unique=False)

    op.create_table('ranking_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ranking_id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('tie_break_note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_ranking_entry_proposal_id_proposal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ranking_id'], ['ranking_list.id'], name=op.f('fk_ranking_entry_ranking_id_ranking_list'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ranking_entry')),
    sa.UniqueConstraint('ranking_id', 'proposal_id', name=op.f('uq_ranking_entry_ranking_id_proposal_id')),
    sa.UniqueConstraint('ranking_id', 'rank', name=op.f('uq_ranking_entry_ranking_id_rank'))
    )
    with op.batch_alter_table('ranking_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ranking_entry_proposal_id'), ['proposal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ranking_entry_ranking_id'), ['ranking_id'], unique=False)

    op.create_table('rebuttal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('submitted_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('submitted_by_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_rebuttal_proposal_id_proposal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['user_account.id'], name=op.f('fk_rebuttal_submitted_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rebuttal')),
    sa.UniqueConstraint('proposal_id', name=op.f('uq_rebuttal_proposal_id'))
    )
    op.create_table('review_assignment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('explanation', sa.JSON(), nullable=True),
    sa.Column('assigned_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('assigned_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['assigned_by_id'], ['user_account.id'], name=op.f('fk_review_assignment_assigned_by_id_user_account')),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_review_assignment_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_review_assignment_proposal_id_proposal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['user_account.id'], name=op.f('fk_review_assignment_reviewer_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_assignment')),
    sa.UniqueConstraint('proposal_id', 'reviewer_id', 'stage', name=op.f('uq_review_assignment_proposal_id_reviewer_id_stage'))
    )
    with op.batch_alter_table('review_assignment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_assignment_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_assignment_proposal_id'), ['proposal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_assignment_reviewer_id'), ['reviewer_id'], unique=False)

    op.create_table('submission',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('submitted_at', workflow.db.UTCDateTime(), nullable=False),
    sa.Column('submitted_by_id', sa.Integer(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('previous_stage_submission_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['previous_stage_submission_id'], ['submission.id'], name=op.f('fk_submission_previous_stage_submission_id_submission')),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_submission_proposal_id_proposal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['user_account.id'], name=op.f('fk_submission_submitted_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submission'))
    )
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submission_proposal_id'), ['proposal_id'], unique=False)

    op.create_table('document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('page_count', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_key', sa.String(length=300), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', workflow.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partner.id'], name=op.f('fk_document_partner_id_partner'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_document_proposal_id_proposal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['user_account.id'], name=op.f('fk_document_uploaded_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document'))
    )
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_proposal_id'), ['proposal_id'], unique=False)

    op.create_table('eligibility_check',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('funder_id', sa.Integer(), nullable=True),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("status != 'ineligible' OR reason IS NOT NULL", name=op.f('ck_eligibility_check_ineligible_has_reason')),
    sa.CheckConstraint("status IN ('pending', 'eligible', 'ineligible')", name=op.f('ck_eligibility_check_known_status')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user_account.id'], name=op.f('fk_eligibility_check_decided_by_id_user_account')),
    sa.ForeignKeyConstraint(['funder_id'], ['funding_organisation.id'], name=op.f('fk_eligibility_check_funder_id_funding_organisation')),
    sa.ForeignKeyConstraint(['partner_id'], ['partner.id'], name=op.f('fk_eligibility_check_partner_id_partner'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_eligibility_check_proposal_id_proposal'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_eligibility_check')),
    sa.UniqueConstraint('proposal_id', 'stage', 'partner_id', 'funder_id', name=op.f('uq_eligibility_check_proposal_id_stage_partner_id_funder_id'))
    )
    with op.batch_alter_table('eligibility_check', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eligibility_check_funder_id'), ['funder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_eligibility_check_proposal_id'), ['proposal_id'], unique=False)

    op.create_table('funding_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scenario_id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('funder_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('from_gap_pot', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_funding_line_amount_not_negative')),
    sa.CheckConstraint('from_gap_pot >= 0 AND from_gap_pot <= amount', name=op.f('ck_funding_line_gap_pot_within_amount')),
    sa.ForeignKeyConstraint(['funder_id'], ['funding_organisation.id'], name=op.f('fk_funding_line_funder_id_funding_organisation')),
    sa.ForeignKeyConstraint(['partner_id'], ['partner.id'], name=op.f('fk_funding_line_partner_id_partner'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_funding_line_proposal_id_proposal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scenario_id'], ['funding_scenario.id'], name=op.f('fk_funding_line_scenario_id_funding_scenario'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_funding_line')),
    sa.UniqueConstraint('scenario_id', 'partner_id', name=op.f('uq_funding_line_scenario_id_partner_id'))
    )
    with op.batch_alter_table('funding_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_funding_line_funder_id'), ['funder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_funding_line_proposal_id'), ['proposal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_funding_line_scenario_id'), ['scenario_id'], unique=False)

    op.create_table('review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('scores', sa.JSON(), nullable=False),
    sa.Column('comments', sa.JSON(), nullable=False),
    sa.Column('recommendation', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('submitted_at', workflow.db.UTCDateTime(), nullable=True),
    sa.Column('released_to_applicants', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'submitted')", name=op.f('ck_review_known_status')),
    sa.ForeignKeyConstraint(['assignment_id'], ['review_assignment.id'], name=op.f('fk_review_assignment_id_review_assignment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposal.id'], name=op.f('fk_review_proposal_id_proposal'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['user_account.id'], name=op.f('fk_review_reviewer_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review')),
    sa.UniqueConstraint('assignment_id', name=op.f('uq_review_assignment_id'))
    )
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_proposal_id'), ['proposal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_reviewer_id'), ['reviewer_id'], unique=False)

    # The audit chain starts at the genesis hash (workflow.audit.GENESIS).
    audit_head = sa.table("audit_head", sa.column("id", sa.Integer), sa.column("seq", sa.BigInteger),
                          sa.column("hash", sa.String))
    op.bulk_insert(audit_head, [{"id": 1, "seq": 0, "hash": "0" * 64}])


def downgrade() -> None:
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_reviewer_id'))
        batch_op.drop_index(batch_op.f('ix_review_proposal_id'))

    op.drop_table('review')
    with op.batch_alter_table('funding_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_funding_line_scenario_id'))
        batch_op.drop_index(batch_op.f('ix_funding_line_proposal_id'))
        batch_op.drop_index(batch_op.f('ix_funding_line_funder_id'))

    op.drop_table('funding_line')
    with op.batch_alter_table('eligibility_check', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eligibility_check_proposal_id'))
        batch_op.drop_index(batch_op.f('ix_eligibility_check_funder_id'))

    op.drop_table('eligibility_check')
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_proposal_id'))

    op.drop_table('document')
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submission_proposal_id'))

    op.drop_table('submission')
    with op.batch_alter_table('review_assignment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_assignment_reviewer_id'))
        batch_op.drop_index(batch_op.f('ix_review_assignment_proposal_id'))
        batch_op.drop_index(batch_op.f('ix_review_assignment_call_id'))

    op.drop_table('review_assignment')
    op.drop_table('rebuttal')
    with op.batch_alter_table('ranking_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ranking_entry_ranking_id'))
        batch_op.drop_index(batch_op.f('ix_ranking_entry_proposal_id'))

    op.drop_table('ranking_entry')
    with op.batch_alter_table('proposal_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_proposal_member_user_id'))

    op.drop_table('proposal_member')
    with op.batch_alter_table('proposal_invitation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_proposal_invitation_proposal_id'))

    op.drop_table('proposal_invitation')
    with op.batch_alter_table('partner', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partner_proposal_id'))
        batch_op.drop_index(batch_op.f('ix_partner_pi_email'))
        batch_op.drop_index(batch_op.f('ix_partner_funder_id'))

    op.drop_table('partner')
    with op.batch_alter_table('panel_consensus', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_panel_consensus_proposal_id'))
        batch_op.drop_index(batch_op.f('ix_panel_consensus_call_id'))

    op.drop_table('panel_consensus')
    with op.batch_alter_table('funding_confirmation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_funding_confirmation_proposal_id'))
        batch_op.drop_index(batch_op.f('ix_funding_confirmation_funder_id'))
        batch_op.drop_index(batch_op.f('ix_funding_confirmation_call_id'))

    op.drop_table('funding_confirmation')
    with op.batch_alter_table('decision_letter', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decision_letter_proposal_id'))
        batch_op.drop_index(batch_op.f('ix_decision_letter_call_id'))

    op.drop_table('decision_letter')
    with op.batch_alter_table('conflict', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conflict_reviewer_id'))
        batch_op.drop_index(batch_op.f('ix_conflict_proposal_id'))
        batch_op.drop_index(batch_op.f('ix_conflict_call_id'))

    op.drop_table('conflict')
    with op.batch_alter_table('change_approval', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_change_approval_proposal_id'))

    op.drop_table('change_approval')
    with op.batch_alter_table('role_invitation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_invitation_email'))
        batch_op.drop_index(batch_op.f('ix_role_invitation_call_id'))

    op.drop_table('role_invitation')
    op.drop_table('role_grant')
    with op.batch_alter_table('reviewer_profile', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reviewer_profile_user_id'))
        batch_op.drop_index(batch_op.f('ix_reviewer_profile_call_id'))

    op.drop_table('reviewer_profile')
    with op.batch_alter_table('reviewer_invitation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reviewer_invitation_user_id'))
        batch_op.drop_index(batch_op.f('ix_reviewer_invitation_call_id'))

    op.drop_table('reviewer_invitation')
    with op.batch_alter_table('ranking_list', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ranking_list_call_id'))

    op.drop_table('ranking_list')
    with op.batch_alter_table('proposal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_proposal_state'))
        batch_op.drop_index(batch_op.f('ix_proposal_coordinator_id'))
        batch_op.drop_index(batch_op.f('ix_proposal_call_id'))

    op.drop_table('proposal')
    with op.batch_alter_table('mail_template', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_template_call_id'))

    op.drop_table('mail_template')
    op.drop_table('letter_template')
    with op.batch_alter_table('letter_export_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_letter_export_job_call_id'))

    op.drop_table('letter_export_job')
    with op.batch_alter_table('funding_scenario', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_funding_scenario_call_id'))

    op.drop_table('funding_scenario')
    op.drop_table('call_stage')
    op.drop_table('call_funder')
    with op.batch_alter_table('budget_increase', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_budget_increase_funder_id'))
        batch_op.drop_index(batch_op.f('ix_budget_increase_call_id'))

    op.drop_table('budget_increase')
    with op.batch_alter_table('account_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_token_user_id'))

    op.drop_table('account_token')
    op.drop_table('user_account')
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_message_status'))
        batch_op.drop_index(batch_op.f('ix_outbox_message_kind'))
        batch_op.drop_index(batch_op.f('ix_outbox_message_call_id'))

    op.drop_table('outbox_message')
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_attempt_ip'))
        batch_op.drop_index('ix_login_attempt_email_at')

    op.drop_table('login_attempt')
    op.drop_table('funding_organisation')
    op.drop_table('call')
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_object')
        batch_op.drop_index(batch_op.f('ix_audit_event_call_id'))
        batch_op.drop_index(batch_op.f('ix_audit_event_actor_id'))
        batch_op.drop_index(batch_op.f('ix_audit_event_action'))

    op.drop_table('audit_event')
