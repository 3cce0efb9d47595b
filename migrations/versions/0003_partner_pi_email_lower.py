"""partner: index lower(pi_email) (rule 9 counts a PI's proposals by it) instead of the plain column

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_partner_pi_email', table_name='partner')
    op.create_index('ix_partner_pi_email_lower', 'partner', [sa.text('lower(pi_email)')], unique=False)


def downgrade() -> None:
    op.drop_index('ix_partner_pi_email_lower', table_name='partner')
    op.create_index('ix_partner_pi_email', 'partner', ['pi_email'], unique=False)
