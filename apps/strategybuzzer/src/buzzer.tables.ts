/** The module's tables as Kysely sees them: `<module>.<table>`. */
export interface BuzzerTables {
  'strategybuzzer.house': {
    id: number;
    org_id: string;
    claimed_by: string;
    claimed_at: Date;
  };
  'strategybuzzer.players': {
    user_id: string;
    name: string;
    level: number;
    wallet_account_id: string | null;
    games: number;
    wins: number;
    points: string | number | bigint;
    best_streak: number;
    avatar_object_id: string | null;
    created_at: Date;
  };
  'strategybuzzer.questions': {
    id: string;
    language: string;
    category: string;
    level: number;
    prompt: string;
    choices: string;
    answer: number;
    created_at: Date;
  };
  'strategybuzzer.games': {
    id: string;
    region: string;
    mode: string;
    language: string;
    code: string | null;
    started_at: Date;
    ended_at: Date;
  };
  'strategybuzzer.game_players': {
    game_id: string;
    user_id: string;
    name: string;
    score: number;
    best_streak: number;
    correct: number;
    wrong: number;
    rank: number;
  };
  'strategybuzzer.chat_messages': {
    id: string;
    room_id: string;
    user_id: string;
    name: string;
    body: string;
    created_at: Date;
  };
  'strategybuzzer.tickets': {
    user_id: string;
    id: string;
    name: string;
    region: string;
    mode: string;
    language: string;
    level: number;
    code: string | null;
    created_ms: number;
    hold_id: string | null;
    room_id: string | null;
  };
  'strategybuzzer.rooms': {
    id: string;
    host_node: string;
    region: string;
    mode: string;
    language: string;
    code: string | null;
    players: string;
    results: string;
    started_at: Date;
    heartbeat_at: Date;
    ended_at: Date | null;
    end_reason: string | null;
  };
  'strategybuzzer.weekly_scores': {
    week: string;
    user_id: string;
    points: string | number | bigint;
    games: number;
    wins: number;
  };
}
