"""assignment_preview: an automatic assignment preview kept for its pages (computing it takes seconds)

Revision ID: 0004
Revises: 0003

"""
from alembic import op
import sqlalchemy as sa
import workflow.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('assignment_preview',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', workflow.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_assignment_preview_call_id_call'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_assignment_preview_created_by_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignment_preview'))
    )
    with op.batch_alter_table('assignment_preview', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assignment_preview_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignment_preview_created_at'), ['created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('assignment_preview', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assignment_preview_created_at'))
        batch_op.drop_index(batch_op.f('ix_assignment_preview_call_id'))

    op.drop_table('assignment_preview')
