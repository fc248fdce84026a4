/** Named cron schedules (SPEC §4): create or replace, remove, list. Admin scope. */
import type { App, RouteDeps } from '../deps.ts';
import { DeletedReply, Problem, ScheduleBody, ScheduleInfo, ScheduleParams, SchedulesReply } from '../schemas.ts';

const problems = { 400: Problem, 401: Problem, 403: Problem, 413: Problem, 429: Problem };

export async function scheduleRoutes(app: App, deps: RouteDeps): Promise<void> {
  const { ferry } = deps;

  app.put(
    '/v1/schedules/:name',
    {
      schema: {
        summary: 'Create or replace a schedule: a message into `queue` at every tick of `cron`',
        params: ScheduleParams,
        body: ScheduleBody,
        response: { 200: ScheduleInfo, ...problems },
      },
      config: { access: { scopes: ['admin'], allQueues: true } },
    },
    async (request) => ferry.schedule(request.params.name, request.body),
  );

  app.delete(
    '/v1/schedules/:name',
    {
      schema: { summary: 'Remove a schedule', params: ScheduleParams, response: { 200: DeletedReply, ...problems } },
      config: { access: { scopes: ['admin'], allQueues: true } },
    },
    async (request) => ferry.unschedule(request.params.name),
  );

  app.get(
    '/v1/schedules',
    {
      schema: { summary: 'Every schedule', response: { 200: SchedulesReply, ...problems } },
      config: { access: { scopes: ['admin'], allQueues: true } },
    },
    async () => ({ schedules: await ferry.schedules() }),
  );
}
