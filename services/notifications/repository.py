"""SQL for the notifications schema."""

from __future__ import annotations

import asyncpg


class MemberDirectory:
    """Members as this service knows them from membership events."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def joined(
        self,
        member_id: str,
        name: str,
        union_id: str,
        union_path: list[str],
        categories: list[str],
        card_number: str,
    ) -> None:
        await self.conn.execute(
            "INSERT INTO members (member_id, name, union_id, union_path, categories, card_number,"
            " status) VALUES ($1, $2, $3, $4, $5, $6, 'active')"
            " ON CONFLICT (member_id) DO UPDATE SET name = $2, union_id = $3, union_path = $4,"
            " categories = $5, card_number = $6, status = 'active', updated_at = now()",
            member_id,
            name,
            union_id,
            union_path,
            categories,
            card_number,
        )

    async def update(self, member_id: str, **fields: object) -> None:
        assigns = ", ".join(f"{k} = ${i}" for i, k in enumerate(fields, start=2))
        await self.conn.execute(
            f"UPDATE members SET {assigns}, updated_at = now() WHERE member_id = $1",
            member_id,
            *fields.values(),
        )

    async def get(self, member_id: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow("SELECT * FROM members WHERE member_id = $1", member_id)
