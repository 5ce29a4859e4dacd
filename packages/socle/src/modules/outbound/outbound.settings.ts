import { defineSettings, type SettingValues, setting } from '../../kernel/index.js';

const HTTP = ['http:', 'https:'] as const;

/**
 * Credentials and addresses of the providers Socle has clients for, from the environment (or
 * `socle.config.json`): an app declares its providers with them (`defineOpenAiProvider('openai',
 * { apiKey: outbound.settings.openaiApiKey, … })`). Secrets are never printed: `socle help config`
 * shows defaults only, and problems never echo a secret's value.
 */
export const outboundSettings = defineSettings({
  openaiApiKey: setting.secret({
    env: 'OPENAI_API_KEY',
    description: 'API key of OpenAI (transcriptions, chat completions)',
  }),
  openaiBaseUrl: setting.url({
    env: 'OPENAI_BASE_URL',
    description: 'Base URL of the OpenAI API (default https://api.openai.com/v1)',
    protocols: HTTP,
  }),
  whisperLocalUrl: setting.url({
    env: 'WHISPER_LOCAL_URL',
    description:
      'Base URL of a self-hosted OpenAI-compatible Whisper server (…/v1): the transcriptions fallback',
    protocols: HTTP,
  }),
  zoomAccountId: setting.optionalString({
    env: 'ZOOM_ACCOUNT_ID',
    description: 'Zoom Server-to-Server OAuth account id',
  }),
  zoomClientId: setting.optionalString({
    env: 'ZOOM_CLIENT_ID',
    description: 'Zoom Server-to-Server OAuth client id',
  }),
  zoomClientSecret: setting.secret({
    env: 'ZOOM_CLIENT_SECRET',
    description: 'Zoom Server-to-Server OAuth client secret',
  }),
  replicateApiToken: setting.secret({ env: 'REPLICATE_API_TOKEN', description: 'API token of Replicate' }),
  replicateWebhookSecret: setting.secret({
    env: 'REPLICATE_WEBHOOK_SECRET',
    description: "Replicate's webhook signing secret (whsec_…, GET /v1/webhooks/default/secret)",
  }),
});

export type OutboundSettings = SettingValues<typeof outboundSettings>;
